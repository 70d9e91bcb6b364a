import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Repository } from '../db/repository.js'
import type { Dispatcher } from '../submission/dispatcher.js'

export interface SenderDeps {
  repo: Repository
  dispatcher: Dispatcher
  clock: Clock
  log: FastifyBaseLogger
  /** Called when a send ends, so the loop can look for more work. */
  onSettled?: () => void
}

const LEASE_MS = 30_000
const IDLE_MS = 1000

/**
 * Sends queued tasks in arrival order as far as the rate budget and the circuit breaker allow.
 * Returns how long to wait before the next run.
 */
export function sendDue(deps: SenderDeps): number {
  const { repo, dispatcher, clock } = deps
  const now = clock.now()
  // Also swept by the reconciler every second, so an open circuit cannot hold a task past it.
  const expired = repo.failPastDeadline(now, 'kie.ai could not be reached before the submit deadline')
  if (expired.length > 0) deps.log.warn({ count: expired.length }, 'queued tasks passed their submit deadline')
  const openUntil = dispatcher.breaker.openUntil()
  if (openUntil !== null && now < openUntil) return openUntil - now
  const budget = dispatcher.budget(now)
  const free = budget.max - repo.slotsUsed(budget)
  if (free <= 0) {
    // An answer coming back wakes the loop; otherwise the oldest counted request leaves the window.
    const oldest = repo.slotTime(budget, 0, now)
    return oldest === null ? 50 : Math.max(1, oldest + dispatcher.windowMs - now + 1)
  }
  // Half-open: one probe, not a burst. Leased and marked sending in one commit, then sent.
  const claimed = repo.inTransaction(() =>
    repo.claimReady(dispatcher.owner, now, LEASE_MS, openUntil === null ? free : 1).map((task) => ({ task, claim: dispatcher.claimLeased(task, now) }))
  )
  if (claimed.length === 0) {
    const next = repo.earliestNextAttempt()
    return next === null ? IDLE_MS : Math.min(IDLE_MS, Math.max(1, next - now))
  }
  for (const { task, claim } of claimed) {
    if (claim.kind === 'deferred') {
      repo.releaseLease(task.id, dispatcher.owner)
      continue
    }
    // A failed commit of the answer leaves the task sending: start-up recovery or its callback settles it.
    void dispatcher.sendClaimed(task, claim).then(
      () => deps.onSettled?.(),
      (err: unknown) => deps.log.error({ err, taskId: task.id }, 'recording the answer of a send failed')
    )
  }
  return 0
}
