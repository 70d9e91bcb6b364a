import type { FinalHook, FinalWrites, Outcome, TaskRow } from '../db/repository.js'
import type { Signals } from '../signals.js'
import type { Waiters } from './waiters.js'

export interface FinalFanoutDeps {
  waiters: Waiters
  signals: Signals
  /** Whether results are archived (RESULTS_DIR). */
  archiveResults: boolean
}

/**
 * What happens when a task becomes final, in the order it happens. The repository's `finish`
 * (the one way a task becomes final) calls `inTransaction` inside its transaction, then
 * `afterCommit` once that transaction has committed.
 */
export function createFinalFanout({ waiters, signals, archiveResults }: FinalFanoutDeps) {
  return {
    inTransaction(task: TaskRow, outcome: Outcome, now: number, writes: FinalWrites): void {
      // 1. A success's result files are queued for the archive.
      if (archiveResults && outcome.status === 'succeeded') writes.queueResults(task.id, outcome.resultUrls, now)
      // 2. Its webhook event is written to the outbox: never lost, never sent for a change that was not stored.
      if (task.webhook_url !== null) writes.enqueueWebhook(task.id, `${task.type}.${outcome.status}`, task.webhook_url, now)
      // 3. Work chained to it: sent now with its kie.ai id, or failed with it (their children too).
      if (outcome.status === 'succeeded' && task.kie_task_id !== null) writes.releaseChildren(task.id, task.kie_task_id, now)
      else if (outcome.status === 'failed') writes.failChildren(task.id, now, `its parent task ${task.id} failed: ${outcome.message}`)
    },
    afterCommit(taskId: string): void {
      // 4. Long polls waiting on the task are answered.
      waiters.notify(taskId)
      // 5. Chained work released above goes to the sender.
      signals.emit('taskQueued')
      // 6. The archive copies its results.
      signals.emit('archiveDue')
      // 7. Its webhook goes out: a failure at once, a success once its archive is stored or
      //    failed, or after WEBHOOK_ARCHIVE_WAIT_MS at the latest (the webhook outbox's claim).
      signals.emit('webhookDue')
    },
    /** 8. An archived file was stored or gave up: a success webhook held for it may go. */
    archiveSettled(): void {
      signals.emit('webhookDue')
    }
  } satisfies FinalHook & { archiveSettled(): void }
}

export type FinalFanout = ReturnType<typeof createFinalFanout>
