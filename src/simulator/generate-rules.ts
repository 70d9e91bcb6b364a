/**
 * The body rules of POST /api/v1/mj/generate as kie.ai's "Generate Midjourney Image" page gives
 * them (kie-api.md). Written as code rather than a JSON schema: half the rules depend on taskType,
 * and each refusal has to name its field in a msg a reader (or a gateway's log) can act on.
 */

export const GENERATE_TASK_TYPES = ['mj_txt2img', 'mj_img2img', 'mj_style_reference', 'mj_omni_reference', 'mj_video', 'mj_video_hd'] as const
export type GenerateTaskType = typeof GENERATE_TASK_TYPES[number]

const VIDEO_TYPES: readonly string[] = ['mj_video', 'mj_video_hd']
// every type but mj_txt2img starts from the caller's image
const NEEDS_FILE: readonly string[] = ['mj_img2img', 'mj_style_reference', 'mj_omni_reference', ...VIDEO_TYPES]
const NO_SPEED: readonly string[] = ['mj_omni_reference', ...VIDEO_TYPES]
// record-info's paramJson names the speeds the way Midjourney does (kie-api.md: "relaxed" comes back "Relax")
const SPEED_ECHO: Readonly<Record<string, string>> = { relaxed: 'Relax', fast: 'Fast', turbo: 'Turbo' }
const ASPECT_RATIOS = ['1:2', '9:16', '2:3', '3:4', '5:6', '6:5', '4:3', '3:2', '1:1', '16:9', '2:1']
// strings, not numbers: "6" and 6 are different answers
const VERSIONS = ['7', '6.1', '6', '5.2', '5.1', 'niji6', 'niji7']
export const PROMPT_MAX_CHARS = 2000

/** A body that passed generateRefusal: the fields the simulator reads, and whatever else was sent. */
export interface GenerateBody {
  taskType: GenerateTaskType
  prompt: string
  speed?: string
  waterMark?: string
  callBackUrl?: string
  [field: string]: unknown
}

/** null: the value is fine; otherwise what is wrong with it, to follow the field's name. */
type Check = (value: unknown) => string | null

const oneOf = (allowed: readonly unknown[]): Check => (v) =>
  allowed.includes(v) ? null : `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`
const integer = (min: number, max: number, step = 1): Check => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max && v % step === 0
    ? null
    : `must be an integer from ${min} to ${max}${step === 1 ? '' : ` in steps of ${step}`}`
const string: Check = (v) => (typeof v === 'string' ? null : 'must be a string')
const boolean: Check = (v) => (typeof v === 'boolean' ? null : 'must be a boolean')

function isHttpUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false
  try {
    const { protocol } = new URL(v)
    return protocol === 'http:' || protocol === 'https:'
  } catch {
    return false
  }
}

const fileUrls: Check = (v) => {
  if (!Array.isArray(v)) return 'must be an array of http(s) URLs'
  const bad = v.findIndex((url) => !isHttpUrl(url))
  return bad === -1 ? null : `[${bad}] must be an http(s) URL`
}

// Code points, not UTF-16 units: the more lenient reading of "2000 characters".
const prompt: Check = (v) => (typeof v === 'string' && v.length > 0 && [...v].length <= PROMPT_MAX_CHARS
  ? null
  : `must be a string of 1 to ${PROMPT_MAX_CHARS} characters`)

/** Each documented field's own rule, in the page's order; fields not listed are kept as sent. */
const FIELDS: Readonly<Record<string, Check>> = {
  prompt,
  speed: oneOf(Object.keys(SPEED_ECHO)),
  fileUrls,
  fileUrl: (v) => (isHttpUrl(v) ? null : 'must be an http(s) URL'),
  aspectRatio: oneOf(ASPECT_RATIOS),
  version: oneOf(VERSIONS),
  variety: integer(0, 100, 5),
  stylization: integer(0, 1000),
  weirdness: integer(0, 3000),
  ow: integer(1, 1000),
  waterMark: string,
  enableTranslation: boolean,
  callBackUrl: string,
  videoBatchSize: oneOf([1, 2, 4]),
  motion: oneOf(['high', 'low'])
}

// null reads as "not sent", the way kie.ai's JSON binding treats it
const given = (v: unknown): boolean => v !== undefined && v !== null

/** Why kie.ai would refuse this body (a msg naming the field), or null to accept it. */
export function generateRefusal(body: Record<string, unknown>): string | null {
  const refuse = (why: string): string => `Validation failed: ${why}`
  const { taskType } = body
  if (!given(taskType)) return refuse('taskType is required')
  if (typeof taskType !== 'string' || !(GENERATE_TASK_TYPES as readonly string[]).includes(taskType)) {
    return refuse(`taskType ${oneOf(GENERATE_TASK_TYPES)(taskType) ?? ''}`)
  }
  if (!given(body.prompt)) return refuse('prompt is required')
  for (const [field, check] of Object.entries(FIELDS)) {
    const value = body[field]
    const wrong = given(value) ? check(value) : null
    // fileUrls[2] reads better than "fileUrls [2]"
    if (wrong !== null) return refuse(`${field}${wrong.startsWith('[') ? '' : ' '}${wrong}`)
  }
  if (given(body.speed) && NO_SPEED.includes(taskType)) return refuse(`speed is not supported for ${taskType}`)
  if (given(body.ow) && taskType !== 'mj_omni_reference') return refuse('ow is only for mj_omni_reference')
  const files = (Array.isArray(body.fileUrls) ? body.fileUrls.length : 0) + (given(body.fileUrl) ? 1 : 0)
  if (files === 0 && NEEDS_FILE.includes(taskType)) return refuse(`fileUrls is required for ${taskType} (at least one image URL)`)
  if (!given(body.motion) && VIDEO_TYPES.includes(taskType)) return refuse(`motion is required for ${taskType}`)
  return null
}

/** The parameters as record-info's paramJson echoes them: as sent, but with the speed renamed. */
export function paramsEcho(body: GenerateBody): Record<string, unknown> {
  const echoed = typeof body.speed === 'string' ? SPEED_ECHO[body.speed] : undefined
  // spreading keeps the key order, so only the value of speed changes
  return echoed === undefined ? { ...body } : { ...body, speed: echoed }
}
