import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { ReconcileSettings } from '../config.js'
import type { Repository, TaskRow } from '../db/repository.js'
import type { KieClient } from '../kie/client.js'
import { readRecordInfo } from '../kie/record-info.js'
import { backoffDelay } from '../submission/backoff.js'

export interface ReconcilerDeps {
  repo: Repository
  kie: KieClient
  clock: Clock
  reconcile: ReconcileSettings
  log: FastifyBaseLogger
  random?: () => number
  onPoll?: (result: 'final' | 'generating' | 'unknown' | 'error') => void
}

/** kie.ai allows about 10 status queries a second; stay below it. */
export const MAX_POLLS_PER_SECOND = 8
const MAX_POLL_INTERVAL_MS = 10 * 60_000

function nextPollAt(task: TaskRow, now: number, deps: ReconcilerDeps): number {
  const at = now + backoffDelay(task.reconcile_attempts + 1, { baseMs: deps.reconcile.reconcileAfterMs, capMs: MAX_POLL_INTERVAL_MS, jitter: [0.8, 1.2], random: deps.random })
  // One last look at the moment the task would time out, whatever the backoff says.
  const timeoutAt = task.last_activity_at + deps.reconcile.taskTimeoutMs
  return timeoutAt > now ? Math.min(at, timeoutAt) : at
}

/**
 * One pass: asks record-info about tasks that have heard nothing for a while and applies what
 * is final, then fails tasks that went quiet for too long. Whichever of this and a callback
 * comes first wins; the other changes nothing.
 */
export async function reconcileOnce(deps: ReconcilerDeps, maxPolls = MAX_POLLS_PER_SECOND): Promise<number> {
  const { repo, clock, reconcile, log } = deps
  let polled = 0
  for (const task of repo.dueForReconcile(clock.now(), maxPolls)) {
    const answer = await deps.kie.recordInfo(task.kie_task_id as string)
    polled++
    const t = clock.now()
    if (!answer.ok) {
      deps.onPoll?.('error')
      // "recordInfo is null" and outages are not signs of life: keep asking, with backoff.
      const state = answer.kind === 'rejected' ? 'missing' : task.upstream_state ?? 'generating'
      repo.noteReconcile(task.id, t, nextPollAt(task, t, deps), state, state !== task.upstream_state)
      continue
    }
    const read = readRecordInfo(answer.data)
    deps.onPoll?.(read.final ? 'final' : read.state)
    if (read.final) {
      const changed = repo.finish(task.id, read.outcome, t, 'reconcile', null, read.completedAt ?? t)
      log.info({ taskId: task.id, kieTaskId: task.kie_task_id, status: read.outcome.status, changed }, 'reconciled from record-info')
    } else {
      // An answer that cannot be read with certainty (no data yet, an unknown flag, a success
      // without a readable URL) is no sign of life either.
      const alive = read.state !== 'unknown' && read.state !== task.upstream_state
      repo.noteReconcile(task.id, t, nextPollAt(task, t, deps), read.state, alive)
    }
  }

  // After the polls, so that a task due for one is asked before it is given up.
  const now = clock.now()
  const timedOut = repo.failTimedOut(now, reconcile.taskTimeoutMs, `no word from kie.ai for ${Math.round(reconcile.taskTimeoutMs / 1000)} s`)
  const unknown = repo.failUnknownOutcomes(
    now,
    reconcile.outcomeUnknownAfterMs,
    'kie.ai never confirmed this task and no callback came in the time its retries take, so it most likely never received it: it is safe to resubmit. (In the rare case that kie.ai did run it, that result is lost.)'
  )
  const expired = repo.failPastDeadline(now, 'kie.ai could not be reached before the submit deadline')
  if (timedOut.length + unknown.length + expired.length > 0) log.warn({ timedOut, unknown, expired }, 'tasks failed after going quiet')
  return polled
}
