import type { ApiCall } from './types.js'

export const UPSCALE_PATH = '/api/v1/mj/generateUpscale'

/** The `task` query parameter of a request body's callBackUrl, where the gateway puts its own task id. */
function callbackTaskParam (body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null
  const url = (body as { callBackUrl?: unknown }).callBackUrl
  if (typeof url !== 'string') return null
  try {
    return new URL(url).searchParams.get('task')
  } catch {
    return null
  }
}

/** generateUpscale calls whose body.callBackUrl has ?task=<localTaskId>. */
export const upscaleCallsFor = (calls: readonly ApiCall[], localTaskId: string): ApiCall[] =>
  calls.filter((c) => c.method === 'POST' && c.path === UPSCALE_PATH && callbackTaskParam(c.body) === localTaskId)

/** generateUpscale calls that created a task: answered code 200, or accepted and then hung up. */
export const acceptedUpscales = (calls: readonly ApiCall[]): number =>
  calls.filter((c) => c.method === 'POST' && c.path === UPSCALE_PATH && (c.code === 200 || c.taskId !== null)).length

/** Every /api request the simulator saw, in arrival order, with its answer. */
export class CallLog {
  readonly calls: ApiCall[] = []
  readonly #byRequest = new WeakMap<object, ApiCall>()

  /** Record a call and associate it with its request, so routes can annotate it through callOf(). */
  trackCall (request: object, call: ApiCall): void {
    this.calls.push(call)
    this.#byRequest.set(request, call)
  }

  callOf (request: object): ApiCall | undefined {
    return this.#byRequest.get(request)
  }

  /** generateUpscale calls whose body.callBackUrl has query parameter task=<localTaskId>. */
  upscaleCallsFor (localTaskId: string): ApiCall[] {
    return upscaleCallsFor(this.calls, localTaskId)
  }

  /** generateUpscale calls answered code 200, including accept-then-hangup ones. */
  acceptedUpscales (): number {
    return acceptedUpscales(this.calls)
  }
}
