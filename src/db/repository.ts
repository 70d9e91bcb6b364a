import type { Db } from './open.js'
import type {
  TaskStatus,
  StatusSource,
  TaskRow,
  WebhookDeliveryRow,
  WebhookAttemptRow,
  NewTask,
  Outcome,
  CallbackDelivery,
  CallbackEffect,
  ListQuery,
  Budget,
  ResultFileRow,
  IdempotencyRow,
  RepositoryHooks
} from './rows.js'

export type * from './rows.js'

/** All SQL that the running gateway issues, each statement prepared once. */
export function createRepository(db: Db, hooks: RepositoryHooks = {}) {
  const s = {
    insertTask: db.prepare(`INSERT INTO tasks
      (id, owner, status, parent_task_id, image_index, water_mark, callback_url, next_attempt_at, submit_deadline_at,
       created_at, updated_at, last_activity_at)
      VALUES (@id, @owner, 'queued', @parentTaskId, @imageIndex, @waterMark, @callbackUrl, @now, @submitDeadlineAt, @now, @now, @now)
      RETURNING *`),
    byId: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    byIdAndOwner: db.prepare('SELECT * FROM tasks WHERE id = ? AND owner = ?'),
    list: db.prepare(`SELECT * FROM tasks WHERE owner = @owner AND seq < @beforeSeq
      ORDER BY seq DESC LIMIT @limit`),
    listByStatus: db.prepare(`SELECT * FROM tasks WHERE owner = @owner AND status = @status AND seq < @beforeSeq
      ORDER BY seq DESC LIMIT @limit`),

    // The send queue.
    readyAhead: db.prepare(`SELECT count(*) AS n FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND seq < @seq AND next_attempt_at <= @now`),
    queuePosition: db.prepare(`SELECT count(*) AS n FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND seq <= ?`),
    claimable: db.prepare(`SELECT id FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND next_attempt_at <= @now AND submit_deadline_at > @now
        AND (lease_until IS NULL OR lease_until < @now)
      ORDER BY seq LIMIT @limit`),
    releaseLease: db.prepare('UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?'),
    lease: db.prepare('UPDATE tasks SET lease_owner = @owner, lease_until = @until WHERE id = @id RETURNING *'),
    nextAttemptAt: db.prepare(`SELECT min(next_attempt_at) AS at FROM tasks WHERE status = 'queued' AND send_state = 'pending'`),
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
      WHERE id = @id AND status = 'queued' AND send_state = 'pending'
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
    finish: db.prepare(`UPDATE tasks SET status = @status, status_source = @source, result_urls = @resultUrls,
        error_code = @errorCode, error_message = @errorMessage, kie_task_id = coalesce(kie_task_id, @kieTaskId),
        completed_at = @completedAt, updated_at = @now, last_activity_at = @now, lease_owner = NULL, lease_until = NULL
      WHERE id = @id AND status IN ('queued', 'submitted')`),

    // A callback that settles nothing: ask record-info at once (and learn the kie.ai id if lost).
    reconcileNow: db.prepare(`UPDATE tasks SET reconcile_at = @now, kie_task_id = coalesce(kie_task_id, @kieTaskId),
        last_activity_at = CASE WHEN @alive = 1 THEN @now ELSE last_activity_at END
      WHERE id = @id AND status = 'submitted'`),
    learnKieTaskIdWhileSending: db.prepare(`UPDATE tasks SET kie_task_id = @kieTaskId
      WHERE id = @id AND status = 'queued' AND send_state = 'sending' AND kie_task_id IS NULL`),

    // Reconciliation and sweeps.
    dueForReconcile: db.prepare(`SELECT * FROM tasks
      WHERE status = 'submitted' AND kie_task_id IS NOT NULL AND reconcile_at <= @now
      ORDER BY reconcile_at LIMIT @limit`),
    noteReconcile: db.prepare(`UPDATE tasks SET reconcile_at = @nextAt, reconcile_attempts = reconcile_attempts + 1,
        upstream_state = @state,
        last_activity_at = CASE WHEN @alive = 1 THEN @now ELSE last_activity_at END
      WHERE id = @id AND status = 'submitted'`),
    // A task due for a poll gets that poll first: record-info may hold its outcome.
    timedOut: db.prepare(`SELECT id FROM tasks WHERE status = 'submitted' AND kie_task_id IS NOT NULL
      AND last_activity_at <= @before AND (reconcile_at IS NULL OR reconcile_at > @now) LIMIT 500`),
    unknownExpired: db.prepare(`SELECT id FROM tasks WHERE status = 'submitted' AND kie_task_id IS NULL AND sent_at <= ? LIMIT 500`),
    pastDeadline: db.prepare(`SELECT id FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND submit_deadline_at <= ? LIMIT 500`),
    orphanedSends: db.prepare(`SELECT id FROM tasks WHERE status = 'queued' AND send_state = 'sending'`),
    releaseLeases: db.prepare(`UPDATE tasks SET lease_owner = NULL, lease_until = NULL
      WHERE status = 'queued' AND lease_owner IS NOT NULL`),
    releaseWebhookLeases: db.prepare(`UPDATE webhook_deliveries SET lease_until = NULL WHERE state = 'pending' AND lease_until IS NOT NULL`),
    releaseResultLeases: db.prepare(`UPDATE result_files SET lease_until = NULL WHERE status = 'pending' AND lease_until IS NOT NULL`),
    statusCounts: db.prepare('SELECT status, n FROM task_status_counts'),
    queueDepth: db.prepare(`SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND send_state = 'pending'`),


    insertIdempotencyKey: db.prepare(`INSERT INTO idempotency_keys (owner, key, request_hash, task_id, created_at)
      VALUES (@owner, @key, @hash, @taskId, @now) ON CONFLICT (owner, key) DO NOTHING`),
    idempotencyKey: db.prepare('SELECT * FROM idempotency_keys WHERE owner = ? AND key = ?'),
    saveIdempotentResponse: db.prepare(`UPDATE idempotency_keys SET response_status = @status, response_body = @body
      WHERE owner = @owner AND key = @key`),
    // A success is announced once its archive is stored or has failed, so the link in it works,
    // but it waits for the archive at most @archiveWaitMs: a slow download never holds it for days.
    dueWebhooks: db.prepare(`SELECT id FROM webhook_deliveries d
      WHERE state = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
        AND (d.created_at <= @now - @archiveWaitMs
          OR NOT EXISTS (SELECT 1 FROM result_files r WHERE r.task_id = d.task_id AND r.status = 'pending'))
      ORDER BY next_attempt_at LIMIT @limit`),
    insertResultFiles: db.prepare(`INSERT INTO result_files (task_id, idx, url, next_attempt_at, created_at, updated_at)
      SELECT @taskId, CAST(key AS INTEGER), value, @now, @now, @now FROM json_each(@urls)`),
    dueResultFiles: db.prepare(`SELECT id FROM result_files
      WHERE status = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
      ORDER BY next_attempt_at LIMIT @limit`),
    leaseResultFile: db.prepare('UPDATE result_files SET lease_until = @until WHERE id = @id RETURNING *'),
    nextResultFileAt: db.prepare(`SELECT min(next_attempt_at) AS at FROM result_files WHERE status = 'pending'`),
    resultStored: db.prepare(`UPDATE result_files SET status = 'stored', path = @path, bytes = @bytes, sha256 = @sha256,
        content_type = @contentType, error = NULL, attempts = attempts + 1, stored_at = @now, updated_at = @now, lease_until = NULL
      WHERE id = @id AND status = 'pending'`),
    resultRetry: db.prepare(`UPDATE result_files SET attempts = attempts + 1, next_attempt_at = @at, error = @error,
        updated_at = @now, lease_until = NULL WHERE id = @id AND status = 'pending'`),
    resultFailed: db.prepare(`UPDATE result_files SET status = 'failed', attempts = attempts + 1, error = @error,
        updated_at = @now, lease_until = NULL WHERE id = @id AND status = 'pending'`),
    resultFilesFor: db.prepare('SELECT * FROM result_files WHERE task_id = ? ORDER BY idx'),
    expiredResults: db.prepare(`SELECT * FROM result_files WHERE status = 'stored' AND stored_at <= ? LIMIT 100`),
    resultPruned: db.prepare(`UPDATE result_files SET status = 'pruned', error = @error, updated_at = @now WHERE id = @id`),
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
    insertDelivery: db.prepare(`INSERT INTO callback_deliveries
      (received_at, task_id, kie_task_id, verdict, http_status, content_type, signature, signature_timestamp, remote_address,
       body, body_bytes, body_sha256)
      VALUES (@receivedAt, @taskId, @kieTaskId, @verdict, @httpStatus, @contentType, @signature, @signatureTimestamp, @remoteAddress,
       @body, @bodyBytes, @bodySha256)`),
    deliveriesFor: db.prepare('SELECT * FROM callback_deliveries WHERE task_id = ? ORDER BY id'),
    eventsFor: db.prepare('SELECT from_status, to_status, source, at FROM task_events WHERE task_id = ? ORDER BY id'),
    getSetting: db.prepare('SELECT value FROM settings WHERE name = ?'),
    insertSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
    ping: db.prepare('SELECT count(*) AS n FROM schema_migrations')
  }

  const count = (stmt: { get: (...a: never[]) => unknown }, ...args: unknown[]) =>
    ((stmt.get as (...a: unknown[]) => { n: number })(...args)).n

  const finish = db.transaction((
    id: string,
    outcome: Outcome,
    now: number,
    source: StatusSource,
    kieTaskId: string | null = null,
    completedAt: number = now
  ): boolean => {
    const changed = s.finish.run({
      id,
      now,
      source,
      kieTaskId,
      completedAt,
      status: outcome.status,
      resultUrls: outcome.status === 'succeeded' ? JSON.stringify(outcome.resultUrls) : null,
      errorCode: outcome.status === 'failed' ? outcome.code : null,
      errorMessage: outcome.status === 'failed' ? outcome.message : null
    }).changes === 1
    if (changed && hooks.archiveResults && outcome.status === 'succeeded') {
      s.insertResultFiles.run({ taskId: id, urls: JSON.stringify(outcome.resultUrls), now })
    }
    // Deferred: the transaction around this call must commit before anyone reads the result.
    if (changed && hooks.onFinal) setImmediate(hooks.onFinal, id)
    return changed
  })

  const failEach = (ids: Array<{ id: string }>, code: string, message: string, now: number, source: StatusSource) =>
    ids.filter(({ id }) => finish(id, { status: 'failed', code, message }, now, source)).map(({ id }) => id)

  return {
    createTask: (t: NewTask, now: number) => s.insertTask.get({ ...t, callbackUrl: t.callbackUrl ?? null, now }) as TaskRow,
    /**
     * Creates the task under an idempotency key, or returns what the key already holds;
     * one transaction, so concurrent requests with one key make exactly one task.
     */
    createTaskOnce: db.transaction(
      (t: NewTask, now: number, key: string, hash: string): { created: TaskRow } | { existing: IdempotencyRow } => {
        if (s.insertIdempotencyKey.run({ owner: t.owner, key, hash, taskId: t.id, now }).changes === 0) {
          return { existing: s.idempotencyKey.get(t.owner, key) as IdempotencyRow }
        }
        return { created: s.insertTask.get({ ...t, callbackUrl: t.callbackUrl ?? null, now }) as TaskRow }
      }
    ),
    saveIdempotentResponse: (owner: string, key: string, status: number, body: string) =>
      s.saveIdempotentResponse.run({ owner, key, status, body }),
    idempotencyKey: (owner: string, key: string) => s.idempotencyKey.get(owner, key) as IdempotencyRow | undefined,
    getTask: (id: string) => s.byId.get(id) as TaskRow | undefined,
    getOwnedTask: (id: string, owner: string) => s.byIdAndOwner.get(id, owner) as TaskRow | undefined,
    listTasks: (q: ListQuery): TaskRow[] =>
      (q.status ? s.listByStatus : s.list).all({
        owner: q.owner,
        status: q.status,
        beforeSeq: q.beforeSeq ?? Number.MAX_SAFE_INTEGER,
        limit: q.limit
      }) as TaskRow[],

    /** Queued tasks that arrived before this one and may be sent now: they go first. */
    readyAhead: (seq: number, now: number) => count(s.readyAhead, { seq, now }),
    queuePosition: (seq: number) => count(s.queuePosition, seq),
    earliestNextAttempt: () => (s.nextAttemptAt.get() as { at: number | null }).at,
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
    /** Forward-only: a task that is already final never changes. */
    finish,

    dueForReconcile: (now: number, limit: number) => s.dueForReconcile.all({ now, limit }) as TaskRow[],
    noteReconcile: (id: string, now: number, nextAt: number, state: string, alive: boolean) =>
      s.noteReconcile.run({ id, now, nextAt, state, alive: alive ? 1 : 0 }).changes === 1,
    failTimedOut: (now: number, timeoutMs: number, message: string) =>
      failEach(s.timedOut.all({ before: now - timeoutMs, now }) as Array<{ id: string }>, 'GW_TIMEOUT', message, now, 'timeout'),
    failUnknownOutcomes: (now: number, afterMs: number, message: string) =>
      failEach(s.unknownExpired.all(now - afterMs) as Array<{ id: string }>, 'GW_UPSTREAM_OUTCOME_UNKNOWN', message, now, 'timeout'),
    failPastDeadline: (now: number, message: string) =>
      failEach(s.pastDeadline.all(now) as Array<{ id: string }>, 'GW_UPSTREAM_UNAVAILABLE', message, now, 'deadline'),
    /** After a crash: sends that may have gone out wait for their callback; leases are void. */
    recover: db.transaction((now: number, requestTimeoutMs: number): { unknown: number; released: number } => {
      const orphans = s.orphanedSends.all() as Array<{ id: string }>
      for (const { id } of orphans) {
        s.markOutcomeUnknown.run({ id, now, reason: 'the gateway stopped while this request was in flight', source: 'recovery' })
      }
      // A request cut off by the crash ends as late as it could have: its start plus the timeout.
      s.closeOpenSlots.run(requestTimeoutMs)
      // One process owns the database: whatever the last one held is free again.
      const released = s.releaseLeases.run().changes + s.releaseWebhookLeases.run().changes + s.releaseResultLeases.run().changes
      return { unknown: orphans.length, released }
    }),
    /** Four rows kept by triggers: cheap on every scrape. */
    statusCounts: () => s.statusCounts.all() as Array<{ status: TaskStatus; n: number }>,
    queueDepth: () => count(s.queueDepth),

    /** Stores the delivery and applies what it says to its task, atomically. */
    recordCallback: db.transaction((delivery: CallbackDelivery, effect?: CallbackEffect): boolean => {
      let changed = false
      if (effect?.kind === 'finish') {
        changed = finish(effect.taskId, effect.outcome, delivery.receivedAt, 'callback', effect.kieTaskId)
      } else if (effect?.kind === 'reconcile') {
        const args = { id: effect.taskId, now: delivery.receivedAt, kieTaskId: effect.kieTaskId, alive: effect.alive ? 1 : 0 }
        changed = s.reconcileNow.run(args).changes === 1
        if (!changed && effect.kieTaskId !== null) s.learnKieTaskIdWhileSending.run(args)
      }
      // A callback for a task that is already final is kept, but marked as having changed nothing.
      const stored = effect?.kind === 'finish' && !changed ? { ...delivery, verdict: 'ignored_final' } : delivery
      s.insertDelivery.run(stored)
      hooks.onCallback?.(stored.verdict)
      return changed
    }),
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
    claimResultFiles: db.transaction((now: number, leaseMs: number, limit: number): ResultFileRow[] =>
      (s.dueResultFiles.all({ now, limit }) as Array<{ id: number }>).map(
        ({ id }) => s.leaseResultFile.get({ id, until: now + leaseMs }) as ResultFileRow
      )
    ),
    nextResultFileAt: () => (s.nextResultFileAt.get() as { at: number | null }).at,
    resultStored: (id: number, now: number, f: { path: string; bytes: number; sha256: string; contentType: string }) =>
      s.resultStored.run({ id, now, ...f }).changes === 1,
    resultRetry: (id: number, now: number, at: number, error: string) => s.resultRetry.run({ id, now, at, error }).changes === 1,
    resultFailed: (id: number, now: number, error: string) => s.resultFailed.run({ id, now, error }).changes === 1,
    resultFiles: (taskId: string) => s.resultFilesFor.all(taskId) as ResultFileRow[],
    expiredResults: (storedBefore: number) => s.expiredResults.all(storedBefore) as ResultFileRow[],
    resultPruned: (id: number, now: number, error: string) => s.resultPruned.run({ id, now, error }),
    callbackDeliveries: (taskId: string) => s.deliveriesFor.all(taskId) as Array<Record<string, unknown>>,
    taskEvents: (taskId: string) =>
      s.eventsFor.all(taskId) as Array<{ from_status: TaskStatus | null; to_status: TaskStatus; source: StatusSource; at: number }>,
    /** Returns the stored value, storing `make()` first if there is none. */
    getOrCreateSetting: (name: string, make: () => string): string => {
      s.insertSetting.run(name, make())
      return (s.getSetting.get(name) as { value: string }).value
    },
    appliedMigrations: () => (s.ping.get() as { n: number }).n,
    /** Runs `fn` in one transaction (nested repository calls become savepoints). */
    inTransaction: db.transaction(<T>(fn: () => T): T => fn()) as <T>(fn: () => T) => T
  }
}

export type Repository = ReturnType<typeof createRepository>
