import type { GenerateBody, UpscaleBody } from './schemas.js'
import type { SimTask } from './types.js'

/** What a request decides about a new task; the rest is its running state. */
export type TaskFields = Omit<SimTask, 'id' | 'state' | 'successFlag' | 'resultUrls' | 'errorMessage' | 'createTime' | 'completeTime'>

const grid = (taskType: string, prompt: string, callBackUrl: string | null, paramJson: string): TaskFields => ({
  type: 'generate',
  taskType,
  parentTaskId: null,
  imageIndex: null,
  prompt,
  waterMark: null,
  callBackUrl,
  paramJson,
  failWith: null
})

// paramJson echoes the body as sent (kie.ai's promptJson), extra fields included
export const generateFields = (body: GenerateBody): TaskFields =>
  grid(body.taskType, body.prompt, body.callBackUrl ?? null, JSON.stringify(body))

export const parentFields = (prompt: string): TaskFields =>
  grid('mj_txt2img', prompt, null, JSON.stringify({ taskType: 'mj_txt2img', prompt }))

export const upscaleFields = (parent: SimTask, body: UpscaleBody, failWith: string | null): TaskFields => ({
  type: 'upscale',
  taskType: 'mj_upscale',
  parentTaskId: parent.id,
  imageIndex: body.imageIndex,
  prompt: parent.prompt,
  waterMark: body.waterMark ?? null,
  callBackUrl: body.callBackUrl ?? null,
  paramJson: JSON.stringify(body),
  failWith
})

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
