import type { FastifyInstance } from 'fastify'
import type { Services } from '../services.js'
import { createLoop } from './loop.js'
import { createCreditWatch } from './credits.js'
import { pruneDue } from './retention.js'
import { reconcileOnce } from './reconciler.js'
import { sendDue } from './sender.js'
import { deliverDue } from '../webhooks/worker.js'
import { archiveDue, cleanTemporaryFiles } from '../archive/worker.js'

// Requests to kie.ai still running at shutdown get this long before they are cut off
// (their tasks then wait for their callbacks); the process must be gone within 10 s.
const SHUTDOWN_GRACE_MS = 6000

/** Starts the sender and the reconciler when the app is ready; stops them on close. */
export function registerWorkers(app: FastifyInstance, services: Services, enabled: boolean) {
  const { repo, clock, dispatcher } = services
  const log = app.log.child({ component: 'workers' })
  const sender = createLoop('sender', async () => sendDue({ repo, dispatcher, clock, log, onSettled: () => sender.wake() }), log)
  const reconciler = createLoop(
    'reconciler',
    async () => {
      await reconcileOnce({
        repo,
        kie: services.kie,
        clock,
        queue: services.queue,
        log,
        onPoll: (result) => services.metrics.reconcilePolls.inc({ result })
      })
      // At most MAX_POLLS_PER_SECOND polls a run, and a run starts a second after the last one ended.
      return 1000
    },
    log
  )
  const { secret } = services.webhooks
  const webhooks = createLoop(
    'webhooks',
    async () =>
      secret
        ? deliverDue({ ...services.webhooks, repo, clock, secret, log, onAttempt: (outcome) => services.metrics.webhooks.inc({ outcome }) })
        : 60_000,
    log
  )
  const archiveSettings = services.archive
  const archive = createLoop(
    'archive',
    async () =>
      archiveSettings
        ? archiveDue({ repo, kie: services.kie, clock, settings: archiveSettings, log, onSettled: () => webhooks.wake() })
        : 60_000,
    log
  )
  const retention = createLoop('retention', async () => pruneDue({ retention: services.retention, settings: services.retentionSettings, clock, log }), log)
  const credits = createLoop('credits', createCreditWatch({ kie: services.kie, settings: services.credits, log }), log)
  if (enabled) {
    app.addHook('onReady', async () => {
      if (archiveSettings) {
        const removed = await cleanTemporaryFiles(archiveSettings.dir)
        if (removed > 0) log.warn({ removed }, 'removed partial downloads left by the last stop')
      }
      sender.start()
      reconciler.start()
      webhooks.start()
      archive.start()
      credits.start()
      retention.start()
    })
  }
  app.addHook('preClose', async () => {
    void dispatcher.drain(SHUTDOWN_GRACE_MS)
  })
  app.addHook('onClose', async () => {
    await Promise.all([sender.stop(), reconciler.stop(), webhooks.stop(), archive.stop(), credits.stop(), retention.stop()])
    await dispatcher.drain(SHUTDOWN_GRACE_MS)
  })
  return {
    wakeSender: () => sender.wake(),
    wakeReconciler: () => reconciler.wake(),
    wakeWebhooks: () => webhooks.wake(),
    wakeArchive: () => archive.wake(),
    wakeCredits: () => credits.wake()
  }
}
