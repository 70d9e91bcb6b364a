import type { Db } from './open.js'
import type { RepositoryHooks } from './rows.js'
import { createAdminQueries } from './admin.js'
import { createArchive } from './archive.js'
import { createCallbackLog } from './callback-log.js'
import { createIdempotency } from './idempotency.js'
import { createSendQueue } from './send-queue.js'
import { createSettings } from './settings.js'
import { createTasks } from './tasks.js'
import { createWebhooks } from './webhooks.js'

export type * from './rows.js'
export type { AdminCallbackRow, AdminListQuery, AdminQueries, AdminTaskListRow } from './admin.js'
export type { Archive } from './archive.js'
export type { CallbackLog } from './callback-log.js'
export type { Idempotency } from './idempotency.js'
export type { SendQueue } from './send-queue.js'
export type { Settings } from './settings.js'
export type { Tasks } from './tasks.js'
export type { Webhooks } from './webhooks.js'

/**
 * Builds every aggregate over the one database handle, in dependency order (no cycles), and
 * returns them as properties besides the flat methods that callers use today.
 */
export function createRepository(db: Db, hooks: RepositoryHooks = {}) {
  const archive = createArchive(db)
  const webhooks = createWebhooks(db)
  const settings = createSettings(db)
  const tasks = createTasks(db, { hooks, writes: { queueResults: archive.queueResults, enqueueWebhook: webhooks.enqueue } })
  const queue = createSendQueue(db, { webhooks, archive })
  const callbacks = createCallbackLog(db, { tasks, hooks })
  const idempotency = createIdempotency(db, tasks)
  // The admin API's reads across every client (the operator console).
  const admin = createAdminQueries(db)

  return {
    tasks,
    queue,
    callbacks,
    webhooks,
    archive,
    idempotency,
    settings,
    admin,
    /** Runs `fn` in one transaction (nested repository calls become savepoints). */
    inTransaction: db.transaction(<T>(fn: () => T): T => fn()) as <T>(fn: () => T) => T,

    createTask: tasks.createTask,
    getTask: tasks.getTask,
    getOwnedTask: tasks.getOwnedTask,
    readTask: tasks.readTask,
    readOwnedTask: tasks.readOwnedTask,
    listTasks: tasks.listTasks,
    finish: tasks.finish,
    dueForReconcile: tasks.dueForReconcile,
    noteReconcile: tasks.noteReconcile,
    failTimedOut: tasks.failTimedOut,
    failUnknownOutcomes: tasks.failUnknownOutcomes,
    failPastDeadline: tasks.failPastDeadline,
    statusCounts: tasks.statusCounts,
    taskEvents: tasks.taskEvents,

    readyAhead: queue.readyAhead,
    queuePosition: queue.queuePosition,
    earliestNextAttempt: queue.earliestNextAttempt,
    queueDepth: queue.queueDepth,
    slotsUsed: queue.slotsUsed,
    slotTime: queue.slotTime,
    slotDone: queue.slotDone,
    claimReady: queue.claimReady,
    releaseLease: queue.releaseLease,
    beginSend: queue.beginSend,
    markSubmitted: queue.markSubmitted,
    markOutcomeUnknown: queue.markOutcomeUnknown,
    scheduleRetry: queue.scheduleRetry,
    recover: queue.recover,

    recordCallback: callbacks.recordCallback,
    callbackDeliveries: callbacks.callbackDeliveries,

    claimWebhooks: webhooks.claimWebhooks,
    nextWebhookAt: webhooks.nextWebhookAt,
    recordWebhookAttempt: webhooks.recordWebhookAttempt,
    webhookDeliveries: webhooks.webhookDeliveries,
    webhookAttempts: webhooks.webhookAttempts,
    retryDeadWebhooks: webhooks.retryDeadWebhooks,

    claimResultFiles: archive.claimResultFiles,
    nextResultFileAt: archive.nextResultFileAt,
    resultStored: archive.resultStored,
    resultRetry: archive.resultRetry,
    resultFailed: archive.resultFailed,
    resultFiles: archive.resultFiles,
    expiredResults: archive.expiredResults,
    resultPruned: archive.resultPruned,

    createTaskOnce: idempotency.createTaskOnce,
    saveIdempotentResponse: idempotency.saveIdempotentResponse,
    idempotencyKey: idempotency.idempotencyKey,

    getOrCreateSetting: settings.getOrCreateSetting,
    appliedMigrations: settings.appliedMigrations
  }
}

export type Repository = ReturnType<typeof createRepository>
