import { paramsEcho, type GenerateBody } from './generate-rules.js'
import type { UpscaleBody, VaryBody } from './schemas.js'
import type { SimTask } from './types.js'

/** What a request decides about a new task; the rest is its running state. */
export type TaskFields = Omit<SimTask, 'id' | 'state' | 'successFlag' | 'resultUrls' | 'errorMessage' | 'createTime' | 'completeTime'>

// The callback's promptJson echoes the body as sent, extra fields included; record-info's
// paramJson too, except that kie.ai renames generate's speed there (paramsEcho).
export const generateFields = (body: GenerateBody, failWith: string | null): TaskFields => ({
  type: 'generate',
  taskType: body.taskType,
  parentTaskId: null,
  imageIndex: null,
  prompt: body.prompt,
  waterMark: body.waterMark ?? null,
  callBackUrl: body.callBackUrl ?? null,
  promptJson: JSON.stringify(body),
  paramJson: JSON.stringify(paramsEcho(body)),
  failWith
})

export const parentFields = (prompt: string): TaskFields =>
  generateFields({ taskType: 'mj_txt2img', prompt }, null)

/** A task made from one image of a finished grid: an upscale (one image) or a vary (a new grid). */
const childFields = (type: 'upscale' | 'vary', parent: SimTask, body: UpscaleBody | VaryBody, failWith: string | null): TaskFields => ({
  type,
  // kie.ai does not document these two; the gateway must not depend on them
  taskType: type === 'upscale' ? 'mj_upscale' : 'mj_vary',
  parentTaskId: parent.id,
  imageIndex: body.imageIndex,
  // the parent's prompt, so a prompt that says fail-upscale still does after a vary
  prompt: parent.prompt,
  waterMark: body.waterMark ?? null,
  callBackUrl: body.callBackUrl ?? null,
  promptJson: JSON.stringify(body),
  paramJson: JSON.stringify(body),
  failWith
})

export const upscaleFields = (parent: SimTask, body: UpscaleBody, failWith: string | null): TaskFields =>
  childFields('upscale', parent, body, failWith)

export const varyFields = (parent: SimTask, body: VaryBody, failWith: string | null): TaskFields =>
  childFields('vary', parent, body, failWith)

/** A task as it starts: generating, nothing to show yet. */
export const startTask = (fields: TaskFields, id: string, now = Date.now()): SimTask => ({
  ...fields,
  id,
  state: 'generating',
  successFlag: 0,
  resultUrls: [],
  errorMessage: null,
  createTime: now,
  completeTime: null
})
