import type { Chaos, UpscaleFault } from './chaos.js'
import type { Variants } from './variants.js'

/** The endpoints sim.script() forces answers for: the three task-creating ones, and record-info. */
export type ScriptedEndpoint = 'generate' | 'generateVary' | 'generateUpscale' | 'recordInfo'
/**
 * A forced answer. `raw` goes out as text/html, `body` as JSON, verbatim either way. With
 * `afterCreate: true` the request is first handled normally (a task made and billed as usual) and
 * this answer replaces the normal one: a CDN that loses the origin's answer. 'accept-then-hangup'
 * does the same and then drops the connection.
 */
export type ScriptedResponse =
  | { httpStatus?: number, body?: unknown, raw?: string, delayMs?: number, afterCreate?: boolean }
  | 'hangup' | 'accept-then-hangup' | 'stall'

export interface SimTask {
  id: string
  /** generate and vary make a four-image grid, upscale one image of a grid */
  type: 'generate' | 'vary' | 'upscale'
  /** what record-info reports as taskType */
  taskType: string
  parentTaskId: string | null
  imageIndex: number | null
  prompt: string | null
  waterMark: string | null
  callBackUrl: string | null
  state: 'generating' | 'success' | 'failed'
  /** 0 generating, 1 success; a failure takes variants.failedFlag (2 or 3) when it fails */
  successFlag: 0 | 1 | 2 | 3
  resultUrls: string[]
  errorMessage: string | null
  createTime: number
  completeTime: number | null
  /** record-info's paramJson: the submitted parameters as a JSON string */
  paramJson: string
  /** the callback's promptJson: the body exactly as sent (paramJson may rename a value, e.g. generate's speed) */
  promptJson: string
  /** decided at creation so a later change of failUpscales or failGrids does not flip a running task; null = succeeds */
  failWith: string | null
}

export interface ApiCall {
  /** arrival time (ms), the time the rate limits count by */
  at: number
  method: string
  path: string
  query: Record<string, unknown>
  body: unknown
  /** 0 when no HTTP answer was sent (hangup, accept-then-hangup, stall) */
  httpStatus: number
  code: number | null
  /** the task this request created (also set when the answer sent was not the normal one: accept-then-hangup, afterCreate) */
  taskId: string | null
  /** the chaos fault that answered this request instead of normal handling, if any */
  fault: UpscaleFault | null
}

export interface SimulatorConfig {
  hmacKey: string | undefined
  completionDelayMs: number
  callbackRetryScale: number
  callbackTimeoutMs: number
  rateLimitMax: number
  rateLimitWindowMs: number
  /** GET record-info requests allowed in any sliding 1 s window; Infinity disables the limit */
  queryRateLimitPerSecond: number
  credits: number
  publicUrl: string
  /** seeds the chaos randomness; default Math.random */
  seed?: number
  /** initial chaos switches */
  chaos?: Partial<Chaos>
  /** initial variants (documented forms of the answers) */
  variants?: Partial<Variants>
}
