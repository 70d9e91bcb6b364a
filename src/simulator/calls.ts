import { SlidingWindow } from './chaos.js'
import type { ApiCall, ScriptedEndpoint, ScriptedResponse, SimulatorConfig } from './types.js'

export const GENERATE_PATH = '/api/v1/mj/generate'
export const VARY_PATH = '/api/v1/mj/generateVary'
export const UPSCALE_PATH = '/api/v1/mj/generateUpscale'
/** The task-creating endpoints: each bills, counts against the new-task limit and draws chaos faults. */
export const TASK_PATHS: readonly string[] = [GENERATE_PATH, VARY_PATH, UPSCALE_PATH]

/** The `task` query parameter of a request body's callBackUrl, where the gateway puts its own task id. */
function callbackTaskParam(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null
  const url = (body as { callBackUrl?: unknown }).callBackUrl
  if (typeof url !== 'string') return null
  try {
    return new URL(url).searchParams.get('task')
  } catch {
    return null
  }
}

/** A POST to `path`, or to any task-creating endpoint when no path is given. */
const isTaskCall = (c: ApiCall, path?: string): boolean =>
  c.method === 'POST' && (path === undefined ? TASK_PATHS.includes(c.path) : c.path === path)

/** Task-creating calls (of `path` only, if given) whose body.callBackUrl has ?task=<localTaskId>. */
export const callsFor = (calls: readonly ApiCall[], localTaskId: string, path?: string): ApiCall[] =>
  calls.filter((c) => isTaskCall(c, path) && callbackTaskParam(c.body) === localTaskId)

/** Task-creating calls (of `path` only, if given) that created a task: answered code 200, or made one whatever the answer. */
export const acceptedTasks = (calls: readonly ApiCall[], path?: string): number =>
  calls.filter((c) => isTaskCall(c, path) && (c.code === 200 || c.taskId !== null)).length

/** generateUpscale calls whose body.callBackUrl has ?task=<localTaskId>. */
export const upscaleCallsFor = (calls: readonly ApiCall[], localTaskId: string): ApiCall[] =>
  callsFor(calls, localTaskId, UPSCALE_PATH)

/** generateUpscale calls that created a task: answered code 200, or accepted and then hung up. */
export const acceptedUpscales = (calls: readonly ApiCall[]): number => acceptedTasks(calls, UPSCALE_PATH)

/**
 * Every /api request the simulator saw, in arrival order, with its answer; and what meets a request
 * before its route's own logic: the rate limits (counted by arrival) and the forced answers queued for it.
 */
export class CallLog {
  readonly calls: ApiCall[] = []
  readonly #byRequest = new WeakMap<object, ApiCall>()
  readonly #scripts: Record<ScriptedEndpoint, ScriptedResponse[]> = { generate: [], generateVary: [], generateUpscale: [], recordInfo: [] }
  readonly #newTasks: SlidingWindow
  readonly #queries: SlidingWindow

  constructor(limits: Pick<SimulatorConfig, 'rateLimitMax' | 'rateLimitWindowMs' | 'queryRateLimitPerSecond'>) {
    // one window for all three task-creating endpoints: kie.ai counts "new generation requests" per account
    this.#newTasks = new SlidingWindow(limits.rateLimitMax, limits.rateLimitWindowMs)
    this.#queries = new SlidingWindow(limits.queryRateLimitPerSecond, 1000)
  }

  /** Record a call and associate it with its request, so routes can annotate it through callOf(). */
  trackCall(request: object, call: ApiCall): void {
    this.calls.push(call)
    this.#byRequest.set(request, call)
  }

  callOf(request: object): ApiCall | undefined {
    return this.#byRequest.get(request)
  }

  /** Queue forced answers for the next requests to `endpoint`, one per request. */
  script(endpoint: ScriptedEndpoint, ...responses: ScriptedResponse[]): void {
    this.#scripts[endpoint].push(...responses)
  }

  takeScript(endpoint: ScriptedEndpoint): ScriptedResponse | undefined {
    return this.#scripts[endpoint].shift()
  }

  /** Sliding window over new-task requests (generate, generateVary, generateUpscale) by arrival time; a rejected one is dropped, not counted. */
  admitNewTask(arrivedAt = Date.now()): boolean {
    return this.#newTasks.admit(arrivedAt)
  }

  /** Sliding 1 s window over record-info requests by arrival time; a rejected request is not counted. */
  admitStatusQuery(arrivedAt = Date.now()): boolean {
    return this.#queries.admit(arrivedAt)
  }

  /** Task-creating calls (generate, generateVary, generateUpscale; or only `path`) whose body.callBackUrl has task=<localTaskId>. */
  callsFor(localTaskId: string, path?: string): ApiCall[] {
    return callsFor(this.calls, localTaskId, path)
  }

  /** Task-creating calls (or only those to `path`) that made a task, including accept-then-hangup and afterCreate ones. */
  acceptedTasks(path?: string): number {
    return acceptedTasks(this.calls, path)
  }

  /** generateUpscale calls whose body.callBackUrl has query parameter task=<localTaskId>. */
  upscaleCallsFor(localTaskId: string): ApiCall[] {
    return upscaleCallsFor(this.calls, localTaskId)
  }

  /** generateUpscale calls answered code 200, including accept-then-hangup ones. */
  acceptedUpscales(): number {
    return acceptedUpscales(this.calls)
  }
}
