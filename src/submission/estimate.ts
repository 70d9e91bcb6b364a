import type { TaskViewRow, Repository } from '../db/repository.js'
import type { Dispatcher } from './dispatcher.js'

export interface QueueInfo {
  /** null while a chained task waits for its parent. */
  position: number | null
  estimatedSendAt: number | null
  waitingFor: string | null
}

/** Where a queued task stands: its place in line and when the rate budget should reach it. */
export function estimateQueue(row: TaskViewRow, repo: Repository, dispatcher: Dispatcher, now: number): QueueInfo | null {
  if (row.status !== 'queued' || row.send_state !== 'pending') return null
  if (row.parent_id !== null && row.parent_task_id === null) return { position: null, estimatedSendAt: null, waitingFor: row.parent_id }
  const position = repo.queuePosition(row.seq)
  const budget = dispatcher.budget(now)
  const used = repo.slotsUsed(budget)
  // The k-th send beyond the free budget waits for the k-th oldest counted send to leave the
  // window; sends beyond those wait for sends that have not happened yet, a window later each.
  let k = position - (budget.max - used) - 1
  let windows = 0
  while (k >= used) {
    k -= budget.max
    windows++
  }
  const base = k < 0 ? now : (repo.slotTime(budget, k, now) ?? now) + dispatcher.windowMs
  const at = k < 0 && windows === 0 ? now : base + windows * dispatcher.windowMs
  return { position, estimatedSendAt: Math.max(at, row.next_attempt_at, dispatcher.breaker.openUntil() ?? 0), waitingFor: null }
}
