import type { Db } from './open.js'
import type { Tasks } from './tasks.js'
import type { IdempotencyRow, NewTask, TaskRow } from './rows.js'

/** Idempotency keys: one task per (owner, key), and the answer first given for it. */
export function createIdempotency(db: Db, tasks: Pick<Tasks, 'createTask'>) {
  const s = {
    insertIdempotencyKey: db.prepare(`INSERT INTO idempotency_keys (owner, key, request_hash, task_id, created_at)
      VALUES (@owner, @key, @hash, @taskId, @now) ON CONFLICT (owner, key) DO NOTHING`),
    idempotencyKey: db.prepare('SELECT * FROM idempotency_keys WHERE owner = ? AND key = ?'),
    saveIdempotentResponse: db.prepare(`UPDATE idempotency_keys SET response_status = @status, response_body = @body
      WHERE owner = @owner AND key = @key`)
  }

  return {
    /**
     * Creates the task under an idempotency key, or returns what the key already holds;
     * one transaction, so concurrent requests with one key make exactly one task.
     */
    createTaskOnce: db.transaction(
      (t: NewTask, now: number, key: string, hash: string): { created: TaskRow } | { existing: IdempotencyRow } => {
        if (s.insertIdempotencyKey.run({ owner: t.owner, key, hash, taskId: t.id, now }).changes === 0) {
          return { existing: s.idempotencyKey.get(t.owner, key) as IdempotencyRow }
        }
        return { created: tasks.createTask(t, now) }
      }
    ),
    saveIdempotentResponse: (owner: string, key: string, status: number, body: string) =>
      s.saveIdempotentResponse.run({ owner, key, status, body }),
    idempotencyKey: (owner: string, key: string) => s.idempotencyKey.get(owner, key) as IdempotencyRow | undefined
  }
}

export type Idempotency = ReturnType<typeof createIdempotency>
