import type { ArchiveSettings } from './archive/worker.js'
import type { Clock } from './clock.js'
import type { CreditSettings, QueueSettings } from './config.js'
import type { Repository, TaskRow } from './db/repository.js'
import type { Retention, RetentionSettings } from './db/retention.js'
import type { KieClient } from './kie/client.js'
import type { Metrics } from './metrics.js'
import type { Dispatcher } from './submission/dispatcher.js'
import type { QueueInfo } from './submission/estimate.js'
import type { Waiters } from './tasks/waiters.js'
import type { SsrfPolicy } from './webhooks/ssrf.js'

/** What the routes and workers share; built once in buildApp. */
export interface Services {
  repo: Repository
  kie: KieClient
  metrics: Metrics
  clock: Clock
  queue: QueueSettings
  apiKeys: readonly string[]
  callbackSecret: string
  /** Still accepted on callbacks, for URLs issued before a rotation. */
  previousCallbackSecrets: readonly string[]
  /** Empty: callbacks need no kie.ai signature. Otherwise the current key, then earlier ones. */
  kieWebhookHmacKeys: readonly string[]
  dispatcher: Dispatcher
  /** Long-polling requests, woken when their task becomes final. */
  waiters: Waiters
  webhooks: { secret: string | null; scheduleMs: readonly number[]; timeoutMs: number; archiveWaitMs: number; policy: SsrfPolicy }
  /** null: results are not archived. */
  archive: ArchiveSettings | null
  credits: CreditSettings
  retention: Retention
  retentionSettings: RetentionSettings
  callbackRefusedLogMax: number
  /** Tells the sender that a task joined the queue. */
  wakeSender(): void
  /** Tells the reconciler that a task is due for record-info now. */
  wakeReconciler(): void
  wakeWebhooks(): void
  queueInfo(row: TaskRow): QueueInfo | null
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared services, for workers and tests. */
    services: Services
  }
}
