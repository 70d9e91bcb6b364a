import type { Signals } from '../signals.js'
import type { Waiters } from './waiters.js'

export interface FinalFanoutDeps {
  waiters: Waiters
  signals: Signals
}

/**
 * What happens when a task becomes final, in the order it happens. Step 1 runs inside the
 * transaction that makes the task final (src/db/tasks.ts, `finish`): its result files are
 * queued for the archive, and its webhook event is written to the outbox. Then, after the
 * commit, this module:
 */
export function createFinalFanout({ waiters, signals }: FinalFanoutDeps) {
  return {
    afterCommit(taskId: string): void {
      // 2. Long polls waiting on the task are answered.
      waiters.notify(taskId)
      // 3. The archive copies its results.
      signals.emit('archiveDue')
      // 4. Its webhook goes out: a failure at once, a success once its archive is stored or
      //    failed, or after WEBHOOK_ARCHIVE_WAIT_MS at the latest (the webhook worker's claim).
      signals.emit('webhookDue')
    },
    /** 5. An archived file was stored or gave up: a success webhook held for it may go. */
    archiveSettled(): void {
      signals.emit('webhookDue')
    }
  }
}

export type FinalFanout = ReturnType<typeof createFinalFanout>
