import { randomBytes } from 'node:crypto'
import type { Db } from './open.js'
import type { WebhookAttemptRow, WebhookDeliveryRow } from './rows.js'

/** The webhook outbox: deliveries (one per final task with a webhook URL) and their attempts. */
export function createWebhooks(db: Db) {
  const s = {
    enqueue: db.prepare(`INSERT INTO webhook_deliveries (event_id, task_id, type, url, created_at, next_attempt_at, updated_at)
      VALUES (@eventId, @taskId, @type, @url, @now, @now, @now)`),
    // A success is announced once its archive is stored or has failed, so the link in it works,
    // but it waits for the archive at most @archiveWaitMs: a slow download never holds it for days.
    dueWebhooks: db.prepare(`SELECT id FROM webhook_deliveries d
      WHERE state = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
        AND (d.created_at <= @now - @archiveWaitMs
          OR NOT EXISTS (SELECT 1 FROM result_files r WHERE r.task_id = d.task_id AND r.status = 'pending'))
      ORDER BY next_attempt_at LIMIT @limit`),
    leaseWebhook: db.prepare('UPDATE webhook_deliveries SET lease_until = @until WHERE id = @id RETURNING *'),
    nextWebhookAt: db.prepare(`SELECT min(next_attempt_at) AS at FROM webhook_deliveries WHERE state = 'pending'`),
    insertWebhookAttempt: db.prepare(`INSERT INTO webhook_attempts (delivery_id, at, status_code, duration_ms, error, response_excerpt)
      VALUES (@deliveryId, @at, @statusCode, @durationMs, @error, @excerpt)`),
    updateWebhook: db.prepare(`UPDATE webhook_deliveries SET state = @state, attempts = attempts + 1,
        next_attempt_at = @nextAttemptAt, lease_until = NULL, updated_at = @now
      WHERE id = @id`),
    webhooksFor: db.prepare('SELECT * FROM webhook_deliveries WHERE task_id = ? ORDER BY id'),
    webhookAttemptsFor: db.prepare(`SELECT a.* FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
      WHERE d.task_id = ? ORDER BY a.id`),
    retryDeadWebhooks: db.prepare(`UPDATE webhook_deliveries SET state = 'pending', attempts = @attempts, next_attempt_at = @now,
        lease_until = NULL, updated_at = @now
      WHERE task_id = @taskId AND state = 'dead' RETURNING *`),
    releaseLeases: db.prepare(`UPDATE webhook_deliveries SET lease_until = NULL WHERE state = 'pending' AND lease_until IS NOT NULL`)
  }

  return {
    /** The Standard Webhooks `webhook-id` is made here: the same on every attempt of the event. */
    enqueue: (taskId: string, type: string, url: string, now: number) =>
      s.enqueue.run({ eventId: `msg_${randomBytes(16).toString('hex')}`, taskId, type, url, now }),
    /** Leases webhook deliveries that are due, oldest first. */
    claimWebhooks: db.transaction((now: number, leaseMs: number, limit: number, archiveWaitMs: number): WebhookDeliveryRow[] =>
      (s.dueWebhooks.all({ now, limit, archiveWaitMs }) as Array<{ id: number }>).map(
        ({ id }) => s.leaseWebhook.get({ id, until: now + leaseMs }) as WebhookDeliveryRow
      )
    ),
    nextWebhookAt: () => (s.nextWebhookAt.get() as { at: number | null }).at,
    /** Records one attempt and where the delivery stands after it, atomically. */
    recordWebhookAttempt: db.transaction(
      (
        delivery: WebhookDeliveryRow,
        attempt: { at: number; statusCode: number | null; durationMs: number; error: string | null; excerpt: string | null },
        next: { state: WebhookDeliveryRow['state']; nextAttemptAt: number }
      ) => {
        s.insertWebhookAttempt.run({ deliveryId: delivery.id, ...attempt })
        s.updateWebhook.run({ id: delivery.id, now: attempt.at, ...next })
      }
    ),
    webhookDeliveries: (taskId: string) => s.webhooksFor.all(taskId) as WebhookDeliveryRow[],
    webhookAttempts: (taskId: string) => s.webhookAttemptsFor.all(taskId) as WebhookAttemptRow[],
    /** Puts dead-lettered deliveries back in line with `attempts` already counted. */
    retryDeadWebhooks: (taskId: string, now: number, attempts: number) =>
      s.retryDeadWebhooks.all({ taskId, now, attempts }) as WebhookDeliveryRow[],
    /** Frees every delivery lease (after a crash); returns how many were held. */
    releaseLeases: () => s.releaseLeases.run().changes
  }
}

export type Webhooks = ReturnType<typeof createWebhooks>
