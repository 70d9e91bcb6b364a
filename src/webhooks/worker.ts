import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Repository, TaskRow, WebhookDeliveryRow } from '../db/repository.js'
import { toTask } from '../tasks/view.js'
import { postWebhook } from './deliver.js'
import { signWebhook } from './sign.js'
import type { SsrfPolicy } from './ssrf.js'
import { backoffDelay } from '../submission/backoff.js'

export interface WebhookDeps {
  repo: Repository
  clock: Clock
  secret: string
  /** Delays before the 2nd, 3rd, ... attempt; after the last, the delivery is dead-lettered. */
  scheduleMs: readonly number[]
  policy: SsrfPolicy
  timeoutMs: number
  /** How long a success waits for its archive before it is sent with the archive still pending. */
  archiveWaitMs: number
  log: FastifyBaseLogger
  random?: () => number
  onAttempt?: (outcome: 'delivered' | 'retry' | 'dead') => void
}

const LEASE_MS = 60_000
const BATCH = 10

/** The event body: the same bytes on every attempt, since a final task never changes. */
export function webhookBody(delivery: WebhookDeliveryRow, task: TaskRow, repo: Repository): string {
  const data = toTask(task, null, repo.resultFiles(task.id))
  return JSON.stringify({ type: delivery.type, timestamp: new Date(delivery.created_at).toISOString(), data })
}

async function attempt(deps: WebhookDeps, delivery: WebhookDeliveryRow) {
  const { repo, clock } = deps
  const body = webhookBody(delivery, repo.getTask(delivery.task_id) as TaskRow, repo)
  const timestamp = Math.floor(clock.now() / 1000)
  const headers = {
    'webhook-id': delivery.event_id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(deps.secret, delivery.event_id, timestamp, body)
  }
  const result = await postWebhook(delivery.url, headers, body, deps.policy, deps.timeoutMs)
  const at = clock.now()
  const attempts = delivery.attempts + 1
  const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300
  let next: { state: WebhookDeliveryRow['state']; nextAttemptAt: number }
  if (ok) next = { state: 'delivered', nextAttemptAt: at }
  else if (result.statusCode === 410 || attempts > deps.scheduleMs.length) next = { state: 'dead', nextAttemptAt: at }
  else {
    const delay = deps.scheduleMs[attempts - 1] as number
    next = { state: 'pending', nextAttemptAt: at + backoffDelay(1, { baseMs: delay, jitter: [0.9, 1.1], random: deps.random }) }
  }
  deps.onAttempt?.(next.state === 'pending' ? 'retry' : next.state)
  repo.recordWebhookAttempt(delivery, { at, statusCode: result.statusCode, durationMs: result.durationMs, error: result.error, excerpt: result.excerpt }, next)
  const fields = { taskId: delivery.task_id, eventId: delivery.event_id, attempt: attempts, statusCode: result.statusCode, error: result.error }
  if (next.state === 'dead') deps.log.warn(fields, 'webhook dead-lettered')
  else if (!ok) deps.log.info(fields, 'webhook attempt failed; will retry')
}

/** Sends the webhook deliveries that are due; returns the delay before the next run. */
export async function deliverDue(deps: WebhookDeps): Promise<number> {
  const now = deps.clock.now()
  const due = deps.repo.claimWebhooks(now, LEASE_MS, BATCH, deps.archiveWaitMs)
  await Promise.all(due.map((d) => attempt(deps, d)))
  if (due.length > 0) return 0
  const next = deps.repo.nextWebhookAt()
  return next === null ? 1000 : Math.min(1000, Math.max(5, next - now))
}
