import type { FastifyError } from 'fastify'
import type { FastifyBaseLogger as Logger } from 'fastify'
import * as E from '../errors.js'
import type { Repository, TaskRow } from '../db/repository.js'
import { callbackUrl } from '../kie/callback-token.js'
import type { KieClient, KieResult } from '../kie/client.js'
import type { Clock } from '../clock.js'

export interface SubmitDeps {
  repo: Repository
  kie: KieClient
  clock: Clock
  publicBaseUrl: string
  callbackSecret: string
  log: Logger
}

export type SubmitResult =
  | { ok: true; task: TaskRow }
  | { ok: false; task: TaskRow; error: FastifyError; retryAfterSeconds: number | null }

type Failure = Extract<KieResult<unknown>, { ok: false }>

/** How a refused submission reaches the client (status, code) and what the task keeps. */
export function mapKieFailure(f: Failure): { error: FastifyError; retryAfterSeconds: number | null } {
  if (f.kind === 'transient') {
    const retryAfterSeconds = Math.max(1, Math.ceil((f.retryAfterMs ?? (f.reason === 'rate_limited' ? 10_000 : 30_000)) / 1000))
    const error = f.reason === 'rate_limited' ? new E.UpstreamRateLimitedError() : new E.UpstreamUnavailableError(f.message)
    return { error, retryAfterSeconds }
  }
  const error =
    f.code === 402 ? new E.UpstreamInsufficientCreditsError(f.msg)
    : f.code === 400 || f.code === 404 || f.code === 422 ? new E.UpstreamRejectedError(f.msg)
    : f.code === 401 || f.code === 403 ? new E.UpstreamAuthError()
    : f.code === 505 ? new E.UpstreamFeatureDisabledError(f.msg)
    : f.code === 501 ? new E.UpstreamGenerationFailedError(f.msg)
    : new E.UpstreamErrorError(`code ${f.code}: ${f.msg}`)
  return { error, retryAfterSeconds: error.statusCode === 503 ? 60 : null }
}

/** Sends a stored, queued task to kie.ai once and records what came of it. */
export async function submitTask(deps: SubmitDeps, task: TaskRow): Promise<SubmitResult> {
  const { repo, clock, log } = deps
  if (!repo.markSending(task.id, clock.now())) {
    throw new Error(`task ${task.id} was already claimed for sending`)
  }
  let result: KieResult<{ taskId: string }>
  try {
    result = await deps.kie.generateUpscale({
      taskId: task.parent_task_id,
      imageIndex: task.image_index,
      ...(task.water_mark === null ? {} : { waterMark: task.water_mark }),
      callBackUrl: callbackUrl(deps.publicBaseUrl, deps.callbackSecret, task.id)
    })
  } catch (err) {
    // A client bug, not kie.ai's answer: the request may have gone out.
    log.error({ err, taskId: task.id }, 'kie.ai client threw')
    result = { ok: false, kind: 'transient', reason: 'network', message: 'internal error while calling kie.ai', retryAfterMs: null, maybeDelivered: true }
  }
  const now = clock.now()
  if (result.ok) {
    repo.markSubmitted(task.id, result.data.taskId, now)
    log.info({ taskId: task.id, kieTaskId: result.data.taskId }, 'upscale submitted to kie.ai')
    return { ok: true, task: repo.getTask(task.id) as TaskRow }
  }
  const mapped = mapKieFailure(result)
  repo.finish(task.id, { status: 'failed', code: mapped.error.code, message: mapped.error.message }, now)
  log.warn({ taskId: task.id, kind: result.kind, code: mapped.error.code }, 'kie.ai did not accept the upscale')
  return { ok: false, task: repo.getTask(task.id) as TaskRow, ...mapped }
}
