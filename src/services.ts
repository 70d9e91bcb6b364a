import type { ArchiveSettings } from './archive/worker.js'
import type { Clock } from './clock.js'
import type { CreditSettings, QueueSettings, ReconcileSettings } from './config.js'
import type { Repository } from './db/repository.js'
import type { Retention, RetentionSettings } from './db/retention.js'
import type { KieClient } from './kie/client.js'
import type { Metrics } from './metrics.js'
import type { Signals } from './signals.js'
import type { Dispatcher } from './submission/dispatcher.js'
import type { Waiters } from './tasks/waiters.js'
import type { CreditReading } from './workers/credits.js'
import type { WebhookSettings } from './workers/plugin.js'

/**
 * What buildApp built, for tests and for tools that drive the app from outside. Routes and
 * workers do not take this: each plugin's options say what it uses.
 */
export interface Services {
  repo: Repository
  kie: KieClient
  metrics: Metrics
  clock: Clock
  queue: QueueSettings
  reconcile: ReconcileSettings
  dispatcher: Dispatcher
  waiters: Waiters
  signals: Signals
  webhooks: WebhookSettings
  /** null: results are not archived. */
  archive: ArchiveSettings | null
  credits: CreditSettings
  /** kie.ai's balance as the credits worker last read it (the admin overview shows it). */
  creditReading: CreditReading
  retention: Retention
  retentionSettings: RetentionSettings
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
  }
}
