import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyError } from 'fastify'
import type { Clock } from '../clock.js'
import type { QueueSettings } from '../config.js'
import type { Budget, Outcome, Repository, TaskRow } from '../db/repository.js'
import * as E from '../errors.js'
import { isErrorCode } from '../errors.js'
import { callbackUrl } from '../kie/callback-token.js'
import type { KieClient, KieFailure, KieResult } from '../kie/client.js'
import { backoffDelay, FULL_JITTER } from './backoff.js'
import { createKieTask, KIE_ENDPOINTS } from './requests.js'
import { createCircuitBreaker } from './circuit-breaker.js'
import type { GroupCommit } from '../db/group-commit.js'

export interface DispatcherDeps {
  repo: Repository
  /** The app's group commit: answers arriving together are recorded in one durable commit. */
  commits: GroupCommit
  kie: KieClient
  clock: Clock
  queue: QueueSettings
  /** A submitted task is first asked about after this long (RECONCILE_AFTER_MS). */
  reconcileAfterMs: number
  publicBaseUrl: () => string
  callbackSecret: string
  log: FastifyBaseLogger
  random?: () => number
  /** How long a task waited from arrival to its first send. */
  onFirstSend?: (waitedMs: number) => void
  /** kie.ai refused a task for want of credits. */
  onInsufficientCredits?: () => void
}

export type SendOutcome =
  | { kind: 'submitted' | 'unknown'; task: TaskRow }
  | { kind: 'retrying'; task: TaskRow; at: number }
  | { kind: 'failed'; task: TaskRow; error: FastifyError; retryAfterSeconds: number | null }
  | { kind: 'deferred'; reason: 'circuit_open' | 'no_budget' | 'queue_ahead' | 'gone' }

/** A task marked sending, with its rate slot: once committed, its request may go out (sendClaimed). */
export interface Claim {
  kind: 'claimed'
  slotId: number
  at: number
}
export type Deferred = Extract<SendOutcome, { kind: 'deferred' }>

type Failure = KieFailure

/** A task's final outcome from the error its client saw. */
const failedWith = (error: FastifyError): Outcome => ({ status: 'failed', code: isErrorCode(error.code) ? error.code : 'GW_UPSTREAM_ERROR', message: error.message })

/** How a definitive refusal reaches the client (status, code), and what the task keeps. */
export function mapRejection(f: Extract<Failure, { kind: 'rejected' }>): FastifyError {
  return f.code === 402 ? new E.UpstreamInsufficientCreditsError(f.msg)
    : f.code === 400 || f.code === 404 || f.code === 422 ? new E.UpstreamRejectedError(f.msg)
    : f.code === 401 || f.code === 403 ? new E.UpstreamAuthError()
    : f.code === 505 ? new E.UpstreamFeatureDisabledError(f.msg)
    : f.code === 501 ? new E.UpstreamGenerationFailedError(f.msg)
    : new E.UpstreamErrorError(`code ${f.code}: ${f.msg}`)
}

/**
 * The one path by which tasks reach kie.ai: within the rate budget, behind the circuit
 * breaker, and never twice for a request that may have arrived.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { repo, clock, queue, log } = deps
  const owner = randomUUID()
  const breaker = createCircuitBreaker({ failureThreshold: queue.circuitFailureThreshold, cooldownMs: queue.circuitCooldownMs, log })
  // kie.ai counts arrivals. A request counts from its answer (it arrived by then), and the
  // margin absorbs clock differences, so a window of arrivals never holds more than the limit.
  const windowMs = queue.rateLimitWindowMs + Math.ceil(queue.rateLimitWindowMs * 0.05)
  const budget = (now: number): Budget => ({ max: queue.rateLimitMax, windowStart: now - windowMs })
  const inFlight = new Set<Promise<unknown>>()
  const shutdown = new AbortController()

  function retryDelay(f: Extract<Failure, { kind: 'transient' }>, attempts: number): number {
    const hinted = f.retryAfterMs ?? 0
    if (f.reason === 'rate_limited') return Math.max(windowMs, hinted)
    return Math.max(hinted, backoffDelay(attempts, { baseMs: queue.retryBaseMs, capMs: queue.retryCapMs, jitter: FULL_JITTER, random: deps.random }))
  }

  /** The answer and the rate slot's end are written together, in the app's next group commit. */
  function record(task: TaskRow, slotId: number, result: KieResult<{ taskId: string }>, log: FastifyBaseLogger): Promise<SendOutcome> {
    return deps.commits.submit(() =>
      repo.inTransaction(() => {
        const now = clock.now()
        repo.slotDone(slotId, now)
        return recordAnswer(task, result, log, now)
      })
    )
  }

  function recordAnswer(task: TaskRow, result: KieResult<{ taskId: string }>, log: FastifyBaseLogger, now: number): SendOutcome {
    const fresh = () => repo.getTask(task.id) as TaskRow
    if (result.ok) {
      breaker.success()
      repo.markSubmitted(task.id, result.data.taskId, now, now + deps.reconcileAfterMs)
      log.info({ taskId: task.id, type: task.type, kieTaskId: result.data.taskId }, 'task submitted to kie.ai')
      return { kind: 'submitted', task: fresh() }
    }
    if (result.kind === 'rejected') {
      breaker.success()
      const error = mapRejection(result)
      repo.finish(task.id, failedWith(error), now, 'submit')
      log.warn({ taskId: task.id, code: result.code, kieMsg: result.msg }, 'kie.ai refused the task')
      if (result.code === 402) deps.onInsufficientCredits?.()
      return { kind: 'failed', task: fresh(), error, retryAfterSeconds: error.statusCode === 503 ? 60 : null }
    }
    // kie.ai's own envelope 500 means kie.ai is up (and sometimes that the request is bad):
    // it does not count against the breaker, and only a few are retried.
    if (result.reason === 'server_error') {
      breaker.success()
      if (task.server_errors >= queue.serverErrorRetries) {
        const error = new E.UpstreamErrorError(`${result.message} (code 500, ${task.server_errors + 1} times)`)
        repo.finish(task.id, failedWith(error), now, 'submit')
        log.warn({ taskId: task.id, attempts: task.attempts, kieMsg: result.message }, 'kie.ai keeps answering code 500; task failed')
        return { kind: 'failed', task: fresh(), error, retryAfterSeconds: null }
      }
    } else if (result.reason !== 'rate_limited') {
      breaker.failure(now, result.reason)
    }
    if (result.maybeDelivered) {
      // Resending could bill twice: the callback URL names this task, so its callback still lands.
      repo.markOutcomeUnknown(task.id, now, result.message)
      log.warn({ taskId: task.id, reason: result.reason }, 'kie.ai may have the task but its answer was lost; waiting for the callback')
      return { kind: 'unknown', task: fresh() }
    }
    const at = now + retryDelay(result, task.attempts + 1)
    if (at > task.submit_deadline_at) {
      const error = new E.UpstreamUnavailableError(`${result.message}; gave up after ${task.attempts + 1} attempts`)
      repo.finish(task.id, failedWith(error), now, 'deadline')
      log.warn({ taskId: task.id, attempts: task.attempts + 1 }, 'submit deadline reached; task failed')
      return { kind: 'failed', task: fresh(), error, retryAfterSeconds: null }
    }
    repo.scheduleRetry(task.id, now, at, result.message, result.reason === 'server_error')
    log.info({ taskId: task.id, reason: result.reason, retryInMs: at - now }, 'kie.ai unavailable; will retry')
    return { kind: 'retrying', task: fresh(), at }
  }

  /**
   * Takes a slot of the rate budget and marks the task sending (repo.beginSend). Synchronous, so
   * that it can share the caller's commit; the request may go out only once that has committed.
   */
  function claim(task: TaskRow, leased: boolean, now: number): Claim | Deferred {
    if (!breaker.allow(now)) return { kind: 'deferred', reason: 'circuit_open' }
    const begun = repo.beginSend(task.id, leased ? owner : null, now, budget(now))
    if (typeof begun === 'string') {
      breaker.cancelProbe()
      return { kind: 'deferred', reason: begun }
    }
    return { kind: 'claimed', slotId: begun.slotId, at: now }
  }

  /** `callLog` is the request's logger when a client request causes the send (its reqId shows). */
  async function send(task: TaskRow, claimed: Claim, callLog: FastifyBaseLogger = log): Promise<SendOutcome> {
    if (task.attempts === 0) deps.onFirstSend?.(claimed.at - task.created_at)
    // From here on the request may reach kie.ai: nothing but recording its answer happens between.
    let result: KieResult<{ taskId: string }>
    const started = performance.now()
    try {
      result = await createKieTask(deps.kie, task, callbackUrl(deps.publicBaseUrl(), deps.callbackSecret, task.id), shutdown.signal)
    } catch (err) {
      log.error({ err, taskId: task.id }, 'kie.ai client threw')
      result = { ok: false, kind: 'transient', reason: 'network', message: 'internal error while calling kie.ai', retryAfterMs: null, maybeDelivered: true }
    }
    callLog.info(
      { taskId: task.id, attempt: task.attempts + 1, outcome: result.ok ? 'accepted' : result.kind, ms: Math.round(performance.now() - started) },
      `kie.ai ${KIE_ENDPOINTS[task.type]}`
    )
    return record(task, claimed.slotId, result, callLog)
  }

  function track<T>(p: Promise<T>): Promise<T> {
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
    return p
  }

  return {
    owner,
    windowMs,
    budget,
    breaker,
    /**
     * A new task is sent at once if nothing waits ahead of it and the budget allows: claimNew
     * runs inside the transaction that stores the task, and sendClaimed once it has committed.
     */
    claimNew(task: TaskRow, now: number): Claim | Deferred {
      if (repo.readyAhead(task.seq, now) > 0) return { kind: 'deferred', reason: 'queue_ahead' }
      return claim(task, false, now)
    },
    /** Claims tasks this dispatcher holds the lease of (the sender's), in the caller's transaction. */
    claimLeased: (task: TaskRow, now: number) => claim(task, true, now),
    /** Sends a claimed task whose claim has been committed, and records the answer. */
    sendClaimed: (task: TaskRow, claimed: Claim, callLog?: FastifyBaseLogger) => track(send(task, claimed, callLog)),
    /** Resolves once every request in flight has been answered and its answer committed. */
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight])
    },
    /** Waits for requests in flight; after `graceMs` aborts them (their outcome becomes unknown). */
    async drain(graceMs: number) {
      const timer = setTimeout(() => shutdown.abort(new Error('shutting down')), graceMs)
      timer.unref()
      await Promise.allSettled([...inFlight])
      clearTimeout(timer)
    }
  }
}

export type Dispatcher = ReturnType<typeof createDispatcher>
