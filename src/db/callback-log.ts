import type { Db } from './open.js'
import type { Tasks } from './tasks.js'
import type { CallbackDelivery, CallbackEffect, RepositoryHooks } from './rows.js'

export interface CallbackLogDeps {
  /** What a delivery does to its task happens in the delivery's transaction. */
  tasks: Pick<Tasks, 'finish' | 'reconcileNow'>
  hooks: Pick<RepositoryHooks, 'onCallback'>
}

/** Every callback delivery kie.ai (or a stranger) sent, with its verdict. */
export function createCallbackLog(db: Db, { tasks, hooks }: CallbackLogDeps) {
  const s = {
    insertDelivery: db.prepare(`INSERT INTO callback_deliveries
      (received_at, task_id, kie_task_id, verdict, http_status, content_type, signature, signature_timestamp, remote_address,
       body, body_bytes, body_sha256)
      VALUES (@receivedAt, @taskId, @kieTaskId, @verdict, @httpStatus, @contentType, @signature, @signatureTimestamp, @remoteAddress,
       @body, @bodyBytes, @bodySha256)`),
    deliveriesFor: db.prepare('SELECT * FROM callback_deliveries WHERE task_id = ? ORDER BY id')
  }

  return {
    /** Stores the delivery and applies what it says to its task, atomically. */
    recordCallback: db.transaction((delivery: CallbackDelivery, effect?: CallbackEffect): boolean => {
      let changed = false
      if (effect?.kind === 'finish') {
        changed = tasks.finish(effect.taskId, effect.outcome, delivery.receivedAt, 'callback', effect.kieTaskId)
      } else if (effect?.kind === 'reconcile') {
        changed = tasks.reconcileNow(effect.taskId, delivery.receivedAt, effect.kieTaskId, effect.alive)
      }
      // A callback for a task that is already final is kept, but marked as having changed nothing.
      const stored = effect?.kind === 'finish' && !changed ? { ...delivery, verdict: 'ignored_final' } : delivery
      s.insertDelivery.run(stored)
      hooks.onCallback?.(stored.verdict)
      return changed
    }),
    callbackDeliveries: (taskId: string) => s.deliveriesFor.all(taskId) as Array<Record<string, unknown>>
  }
}

export type CallbackLog = ReturnType<typeof createCallbackLog>
