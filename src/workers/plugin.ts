import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from '../clock.js'
import type { CreditSettings, ReconcileSettings } from '../config.js'
import type { Repository } from '../db/repository.js'
import type { Retention, RetentionSettings } from '../db/retention.js'
import type { KieClient } from '../kie/client.js'
import type { Metrics } from '../metrics.js'
import type { Signals } from '../signals.js'
import type { Dispatcher } from '../submission/dispatcher.js'
import type { FinalFanout } from '../tasks/on-final.js'
import type { SsrfPolicy } from '../webhooks/ssrf.js'
import { archiveDue, cleanTemporaryFiles, type ArchiveSettings } from '../archive/worker.js'
import type { GroupCommit } from '../db/group-commit.js'
import { deliverDue } from '../webhooks/worker.js'
import { createCreditWatch, type CreditReading } from './credits.js'
import { createLoop } from './loop.js'
import { reconcileOnce } from './reconciler.js'
import { pruneDue } from './retention.js'
import { sendDue } from './sender.js'

export interface WebhookSettings {
  /** null: webhooks to clients are off. */
  secret: string | null
  scheduleMs: readonly number[]
  timeoutMs: number
  archiveWaitMs: number
  policy: SsrfPolicy
}

export interface WorkersOptions {
  /** false: nothing runs in the background (route tests call the workers' functions directly). */
  enabled: boolean
  repo: Repository
  commits: GroupCommit
  kie: KieClient
  dispatcher: Dispatcher
  clock: Clock
  reconcile: ReconcileSettings
  metrics: Metrics
  signals: Signals
  fanout: FinalFanout
  webhooks: WebhookSettings
  archive: ArchiveSettings | null
  credits: CreditSettings
  /** The credits worker keeps its last reading here. */
  creditReading?: CreditReading
  retention: Retention
  retentionSettings: RetentionSettings
}

// Requests to kie.ai still running at shutdown get this long before they are cut off
// (their tasks then wait for their callbacks); the process must be gone within 10 s.
const SHUTDOWN_GRACE_MS = 6000

/** The background workers: each a loop started when the app is ready and stopped on close. */
async function workers(app: FastifyInstance, o: WorkersOptions) {
  const { repo, clock, dispatcher, kie, metrics, signals } = o
  const log = app.log.child({ component: 'workers' })
  const { secret } = o.webhooks
  const archiveSettings = o.archive
  const loops = {
    sender: createLoop('sender', async () => sendDue({ repo, dispatcher, clock, log, onSettled: () => loops.sender.wake() }), log),
    reconciler: createLoop('reconciler', async () => {
      await reconcileOnce({ repo, kie, clock, reconcile: o.reconcile, log, onPoll: (result) => metrics.reconcilePolls.inc({ result }) })
      // At most MAX_POLLS_PER_SECOND polls a run, and a run starts a second after the last one ended.
      return 1000
    }, log),
    webhooks: createLoop('webhooks', async () =>
      secret ? deliverDue({ ...o.webhooks, repo, clock, secret, log, onAttempt: (outcome) => metrics.webhooks.inc({ outcome }) }) : 60_000, log),
    archive: createLoop('archive', async () =>
      archiveSettings ? archiveDue({ repo, commits: o.commits, kie, clock, settings: archiveSettings, log, onSettled: () => o.fanout.archiveSettled() }) : 60_000, log),
    credits: createLoop('credits', createCreditWatch({ kie, settings: o.credits, log, now: () => clock.now(), ...(o.creditReading ? { reading: o.creditReading } : {}) }), log),
    retention: createLoop('retention', async () => pruneDue({ retention: o.retention, settings: o.retentionSettings, clock, log }), log)
  }
  signals.on('taskQueued', () => loops.sender.wake())
  signals.on('reconcileNow', () => loops.reconciler.wake())
  signals.on('webhookDue', () => loops.webhooks.wake())
  signals.on('archiveDue', () => loops.archive.wake())
  signals.on('creditsRefused', () => loops.credits.wake())

  if (o.enabled) {
    app.addHook('onReady', async () => {
      if (archiveSettings) {
        const removed = await cleanTemporaryFiles(archiveSettings.dir)
        if (removed > 0) log.warn({ removed }, 'removed partial downloads left by the last stop')
      }
      for (const loop of Object.values(loops)) loop.start()
    })
  }
  app.addHook('preClose', async () => {
    void dispatcher.drain(SHUTDOWN_GRACE_MS)
  })
  app.addHook('onClose', async () => {
    await Promise.all(Object.values(loops).map((loop) => loop.stop()))
    await dispatcher.drain(SHUTDOWN_GRACE_MS)
  })
}

export default fp(workers, { name: 'workers', fastify: '5.x', dependencies: ['http-conventions'] })
