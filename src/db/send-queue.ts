import type { Db } from './open.js'
import type { Archive } from './archive.js'
import type { Webhooks } from './webhooks.js'
import type { Budget, StatusSource, TaskRow } from './rows.js'

export interface SendQueueDeps {
  /** `recover` frees their leases too: one process owns the database. */
  webhooks: Pick<Webhooks, 'releaseLeases'>
  archive: Pick<Archive, 'releaseLeases'>
}

/** The send queue (queued tasks and their send state) and the rate window (send_slots). */
export function createSendQueue(db: Db, { webhooks, archive }: SendQueueDeps) {
  const s = {
    // A chained task waiting for its parent (parent_task_id still NULL) is in line for nothing yet.
    readyAhead: db.prepare(`SELECT count(*) AS n FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND seq < @seq AND next_attempt_at <= @now AND (parent_id IS NULL OR parent_task_id IS NOT NULL)`),
    queuePosition: db.prepare(`SELECT count(*) AS n FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND seq <= ? AND (parent_id IS NULL OR parent_task_id IS NOT NULL)`),
    claimable: db.prepare(`SELECT id FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND next_attempt_at <= @now AND submit_deadline_at > @now AND (parent_id IS NULL OR parent_task_id IS NOT NULL)
        AND (lease_until IS NULL OR lease_until < @now)
      ORDER BY seq LIMIT @limit`),
    releaseLease: db.prepare('UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?'),
    lease: db.prepare('UPDATE tasks SET lease_owner = @owner, lease_until = @until WHERE id = @id RETURNING *'),
    nextAttemptAt: db.prepare(`SELECT min(next_attempt_at) AS at FROM tasks WHERE status = 'queued' AND send_state = 'pending' AND (parent_id IS NULL OR parent_task_id IS NOT NULL)`),
    queueDepth: db.prepare(`SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND send_state = 'pending'`),
    slotsUsed: db.prepare('SELECT count(*) AS n FROM send_slots WHERE arrived_by IS NULL OR arrived_by > ?'),
    slotTime: db.prepare(`SELECT coalesce(arrived_by, @now) AS at FROM send_slots WHERE arrived_by IS NULL OR arrived_by > @windowStart
      ORDER BY at LIMIT 1 OFFSET @index`),
    insertSlot: db.prepare('INSERT INTO send_slots (started_at) VALUES (?) RETURNING id'),
    slotDone: db.prepare('UPDATE send_slots SET arrived_by = @now WHERE id = @id'),
    // kie.ai may count a request when it answers it, as late as the client's timeout allows.
    closeOpenSlots: db.prepare('UPDATE send_slots SET arrived_by = started_at + ? WHERE arrived_by IS NULL'),
    pruneSlots: db.prepare('DELETE FROM send_slots WHERE arrived_by <= ?'),
    beginSend: db.prepare(`UPDATE tasks SET send_state = 'sending', sent_at = @now, attempts = attempts + 1,
        lease_owner = NULL, lease_until = NULL, updated_at = @now
      WHERE id = @id AND status = 'queued' AND send_state = 'pending' AND (parent_id IS NULL OR parent_task_id IS NOT NULL)
        AND (lease_owner IS NULL OR lease_owner = @owner OR lease_until < @now)`),
    markSubmitted: db.prepare(`UPDATE tasks SET status = 'submitted', status_source = 'submit', send_state = 'sent',
        kie_task_id = @kieTaskId, upstream_state = 'generating', reconcile_at = @reconcileAt, last_error = NULL,
        updated_at = @now, last_activity_at = @now
      WHERE id = @id AND status = 'queued'`),
    // A callback may have finished the task before the submission answer was recorded.
    learnKieTaskId: db.prepare(`UPDATE tasks SET send_state = 'sent', kie_task_id = coalesce(kie_task_id, @kieTaskId)
      WHERE id = @id AND (kie_task_id IS NULL OR send_state <> 'sent')`),
    // reconcile_at: as soon as a callback teaches the kie.ai task id, record-info may be asked.
    markOutcomeUnknown: db.prepare(`UPDATE tasks SET status = 'submitted', status_source = @source, last_error = @reason,
        updated_at = @now, reconcile_at = @now
      WHERE id = @id AND status = 'queued' AND send_state = 'sending'`),
    scheduleRetry: db.prepare(`UPDATE tasks SET send_state = 'pending', next_attempt_at = @at, last_error = @reason,
        server_errors = server_errors + @serverError, updated_at = @now
      WHERE id = @id AND status = 'queued' AND send_state = 'sending'`),
    orphanedSends: db.prepare(`SELECT id FROM tasks WHERE status = 'queued' AND send_state = 'sending'`),
    releaseLeases: db.prepare(`UPDATE tasks SET lease_owner = NULL, lease_until = NULL
      WHERE status = 'queued' AND lease_owner IS NOT NULL`)
  }

  const count = (stmt: { get: (...a: never[]) => unknown }, ...args: unknown[]) =>
    ((stmt.get as (...a: unknown[]) => { n: number })(...args)).n

  return {
    /** Queued tasks that arrived before this one and may be sent now: they go first. */
    readyAhead: (seq: number, now: number) => count(s.readyAhead, { seq, now }),
    queuePosition: (seq: number) => count(s.queuePosition, seq),
    earliestNextAttempt: () => (s.nextAttemptAt.get() as { at: number | null }).at,
    queueDepth: () => count(s.queueDepth),
    slotsUsed: (b: Budget) => count(s.slotsUsed, b.windowStart),
    /** When the index-th oldest send still counted in the window started. */
    slotTime: (b: Budget, index: number, now: number): number | null =>
      (s.slotTime.get({ windowStart: b.windowStart, index, now }) as { at: number } | undefined)?.at ?? null,
    /** The request's answer came back: it counts for one window from now. */
    slotDone: (slotId: number, now: number) => s.slotDone.run({ id: slotId, now }),
    /** Leases up to `limit` sendable tasks, oldest first, to one sender. */
    claimReady: db.transaction((owner: string, now: number, leaseMs: number, limit: number): TaskRow[] =>
      (s.claimable.all({ now, limit }) as Array<{ id: string }>).map(
        ({ id }) => s.lease.get({ id, owner, until: now + leaseMs }) as TaskRow
      )
    ),
    releaseLease: (id: string, owner: string) => s.releaseLease.run(id, owner).changes === 1,
    /**
     * Takes a slot of the rate budget and marks the task as sending, atomically: from here on the
     * request may reach kie.ai, so the task is never sent again. Called right before the request.
     */
    beginSend: db.transaction((id: string, owner: string | null, now: number, b: Budget): { slotId: number } | 'no_budget' | 'gone' => {
      if (count(s.slotsUsed, b.windowStart) >= b.max) return 'no_budget'
      if (s.beginSend.run({ id, owner, now }).changes !== 1) return 'gone'
      s.pruneSlots.run(b.windowStart)
      return { slotId: (s.insertSlot.get(now) as { id: number }).id }
    }),
    /** kie.ai accepted the task. A callback that already finished it keeps its state. */
    markSubmitted: db.transaction((id: string, kieTaskId: string, now: number, reconcileAt: number): boolean => {
      if (s.markSubmitted.run({ id, kieTaskId, now, reconcileAt }).changes === 1) return true
      s.learnKieTaskId.run({ id, kieTaskId })
      return false
    }),
    /** The request may have reached kie.ai but its answer is lost: wait for the callback, never resend. */
    markOutcomeUnknown: (id: string, now: number, reason: string, source: StatusSource = 'submit') =>
      s.markOutcomeUnknown.run({ id, now, reason, source }).changes === 1,
    /** kie.ai certainly did not take the task: it may be sent again at `at`. */
    scheduleRetry: (id: string, now: number, at: number, reason: string, serverError = false) =>
      s.scheduleRetry.run({ id, now, at, reason, serverError: serverError ? 1 : 0 }).changes === 1,
    /** After a crash: sends that may have gone out wait for their callback; leases are void. */
    recover: db.transaction((now: number, requestTimeoutMs: number): { unknown: number; released: number } => {
      const orphans = s.orphanedSends.all() as Array<{ id: string }>
      for (const { id } of orphans) {
        s.markOutcomeUnknown.run({ id, now, reason: 'the gateway stopped while this request was in flight', source: 'recovery' })
      }
      // A request cut off by the crash ends as late as it could have: its start plus the timeout.
      s.closeOpenSlots.run(requestTimeoutMs)
      // One process owns the database: whatever the last one held is free again.
      const released = s.releaseLeases.run().changes + webhooks.releaseLeases() + archive.releaseLeases()
      return { unknown: orphans.length, released }
    })
  }
}

export type SendQueue = ReturnType<typeof createSendQueue>
