import Fastify, { LogController, type FastifyReply, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { validatorCompiler } from './plugins/validation.js'
import { systemClock, type Clock } from './clock.js'
import { loadMigrations } from './db/migrate.js'
import type { Db } from './db/open.js'
import { createRepository } from './db/repository.js'
import { ClientRateLimitedError, errorBody, ErrorResponseSchema } from './errors.js'
import type { KieClient } from './kie/client.js'
import errorHandler from './plugins/error-handler.js'
import openapi from './plugins/openapi.js'
import { createAuthFailures, type AuthFailureSettings } from './plugins/auth-failures.js'
import requireHost, { clientErrorHandler } from './plugins/client-errors.js'
import httpConventions, { requestId, SECURITY_HEADERS } from './plugins/http-conventions.js'
import adminRoutes from './routes/admin.js'
import { consolePlugin } from './plugins/console.js'
import callbackRoutes from './routes/callbacks.js'
import healthRoutes from './routes/health.js'
import upscaleRoutes from './routes/upscale.js'
import taskRoutes from './routes/tasks.js'
import { createSubmitter } from './tasks/submit.js'
import { toTask } from './tasks/view.js'
import type { TaskViewRow } from './db/repository.js'
import type { Services } from './services.js'
import rateLimit from '@fastify/rate-limit'
import { buildSerializer } from './json-schema.js'
import {
  DEFAULT_CALLBACK_REFUSED_LOG_MAX,
  DEFAULT_CREDITS,
  DEFAULT_QUEUE,
  DEFAULT_RECONCILE,
  DEFAULT_RETENTION,
  DEFAULT_WEBHOOK_ARCHIVE_WAIT_MS,
  DEFAULT_WEBHOOK_RETRY_SCHEDULE,
  parseDurations,
  type CreditSettings,
  type QueueSettings,
  type ReconcileSettings
} from './config.js'
import { createRetention, type RetentionSettings } from './db/retention.js'
import deliveryRoutes, { DeliveryListSchema, DeliverySchema } from './routes/deliveries.js'
import { TaskListSchema, TaskSchema } from './tasks/schemas.js'
import resultRoutes from './routes/results.js'
import { DEFAULT_ARCHIVE, type ArchiveSettings } from './archive/worker.js'
import metricsRoutes from './routes/metrics.js'
import { createMetrics, instrumentKie } from './metrics.js'
import { createDispatcher } from './submission/dispatcher.js'
import { createGroupCommit } from './db/group-commit.js'
import { estimateQueue } from './submission/estimate.js'
import workers, { type WebhookSettings } from './workers/plugin.js'
import { recoverFromLastStop } from './workers/recovery.js'
import { createSignals } from './signals.js'
import { createFinalFanout } from './tasks/on-final.js'
import { createWaiters } from './tasks/waiters.js'
import { createCreditReading } from './workers/credits.js'

export interface AppOptions {
  db: Db
  kie: KieClient
  apiKeys: readonly string[]
  /** ADMIN_API_KEYS: the admin API (/admin/...) for the operator console; empty or absent = off (404). */
  adminKeys?: readonly string[]
  /** A function when the address is known only after listen (port 0 in tests). */
  publicBaseUrl: string | (() => string)
  callbackSecret: string
  /** Earlier secrets, accepted on callbacks while their URLs may still be in flight. */
  previousCallbackSecrets?: readonly string[]
  kieWebhookHmacKey?: string | null
  previousKieWebhookHmacKeys?: readonly string[]
  clock?: Clock
  queue?: Partial<QueueSettings>
  /** Reconciliation with record-info and the timeouts of submitted tasks. */
  reconcile?: Partial<ReconcileSettings>
  /** How often kie.ai's credit balance is asked, and when it is low. */
  credits?: Partial<CreditSettings>
  /** How long each growing table keeps its rows. */
  retention?: Partial<RetentionSettings>
  /** Refused callback deliveries stored per minute per source address (CALLBACK_REFUSED_LOG_MAX). */
  callbackRefusedLogMax?: number
  /** The kie.ai client's timeout: a request cut off by a crash may have arrived this late. */
  kieTimeoutMs?: number
  /** Background sender and reconciler; route tests turn them off and call them directly. */
  workers?: boolean
  random?: () => number
  /** Webhooks to clients; without a secret, callbackUrl is refused. */
  webhooks?: {
    secret: string | null
    scheduleMs?: readonly number[]
    allowHosts?: readonly string[]
    allowLoopback?: boolean
    timeoutMs?: number
    /** How long a success webhook waits for its archive (WEBHOOK_ARCHIVE_WAIT_MS). */
    archiveWaitMs?: number
  }
  clientRateLimit?: { max: number; windowMs: number }
  /** Wrong client keys one address may send per window before it is refused (429). */
  authFailures?: Partial<AuthFailureSettings>
  /** Fastify's trustProxy: which peers' X-Forwarded-For names the client (default: none). */
  trustProxy?: boolean | readonly string[]
  /** The result archive; without it, results are not copied. */
  archive?: Partial<ArchiveSettings> & { dir: string }
  /** When set, /metrics needs it as a bearer token. */
  metricsToken?: string | null
  /** Shown in the OpenAPI document. */
  version?: string
  logger?: FastifyServerOptions['logger']
  loggerInstance?: FastifyServerOptions['loggerInstance']
}

export async function buildApp(opts: AppOptions) {
  const app = Fastify({
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: opts.logger ?? false }),
    bodyLimit: 16 * 1024,
    // Behind a load balancer the client address comes from X-Forwarded-For only when trusted.
    trustProxy: typeof opts.trustProxy === 'object' ? [...opts.trustProxy] : opts.trustProxy ?? false,
    // Node's own missing-Host 400 is empty; plugins/client-errors answers it in our shape.
    http: { requireHostHeader: false },
    // Parser errors (no request exists yet) in our shape too.
    clientErrorHandler,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // One line per request is logged by http-conventions, with the fields operators need.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestId,
    // Long polls wait up to 60 s.
    requestTimeout: 75_000,
    // Responses are serialized from plain JSON Schema (enums and type lists), see json-schema.ts.
    schemaController: { compilersFactory: { buildSerializer } },
    // The router's own refusals (bad percent-encoding, overlong parameters) in our shape too.
    // (Route hooks do not run for these, so the usual headers are set here.)
    frameworkErrors: (error, request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      const body = tooLong ? errorBody(414, 'GW_URI_TOO_LONG', 'A path parameter is too long') : errorBody(400, 'GW_BAD_URL', 'The URL is malformed')
      const { statusCode } = body
      request.log.info({ method: request.method, statusCode, code: body.code }, 'request')
      void (reply as FastifyReply).code(statusCode).headers({ ...SECURITY_HEADERS, 'x-request-id': request.id }).send(body)
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // TypeBox checks bodies strictly (no coercion, unknown fields refused) and converts only
  // query strings and path parameters, which are text by nature (integers strictly).
  app.setValidatorCompiler(validatorCompiler)
  // Shared schemas, referenced ($ref) by the routes and the OpenAPI document.
  for (const schema of [ErrorResponseSchema, TaskSchema, TaskListSchema, DeliverySchema, DeliveryListSchema]) app.addSchema(schema)
  // JSON only: Fastify's default text/plain parser would turn a wrong content type into a 400.
  app.removeContentTypeParser('text/plain')

  // The domain, in the order its parts depend on each other; the workers, which react to what
  // happens, listen to signals, so nothing built here refers to something built later.
  const clock = opts.clock ?? systemClock
  const signals = createSignals()
  const waiters = createWaiters()
  const fanout = createFinalFanout({ waiters, signals, archiveResults: opts.archive !== undefined })
  const repo = createRepository(opts.db, { onFinal: fanout, onCallback: (verdict) => signals.emit('callbackStored', verdict) })
  const metrics = createMetrics(repo)
  signals.on('callbackStored', (verdict) => metrics.callbacks.inc({ verdict }))
  const kie = instrumentKie(opts.kie, metrics)
  const queue: QueueSettings = { ...DEFAULT_QUEUE, ...opts.queue }
  const reconcile: ReconcileSettings = { ...DEFAULT_RECONCILE, ...opts.reconcile }
  const baseUrl = opts.publicBaseUrl
  // Durable writes that arrive together (callbacks, new tasks, kie.ai's answers) share one
  // commit, so one fsync covers them all: see db/group-commit.ts.
  const commits = createGroupCommit(repo.inTransaction)
  const dispatcher = createDispatcher({
    repo,
    commits,
    kie,
    onFirstSend: (waitedMs) => metrics.pacingWait.observe(waitedMs / 1000),
    onInsufficientCredits: () => signals.emit('creditsRefused'),
    clock,
    queue,
    reconcileAfterMs: reconcile.reconcileAfterMs,
    publicBaseUrl: typeof baseUrl === 'function' ? baseUrl : () => baseUrl,
    callbackSecret: opts.callbackSecret,
    log: app.log.child({ component: 'dispatcher' }),
    ...(opts.random ? { random: opts.random } : {})
  })
  const webhooks: WebhookSettings = {
    secret: opts.webhooks?.secret ?? null,
    scheduleMs: opts.webhooks?.scheduleMs ?? parseDurations(DEFAULT_WEBHOOK_RETRY_SCHEDULE),
    timeoutMs: opts.webhooks?.timeoutMs ?? 10_000,
    archiveWaitMs: opts.webhooks?.archiveWaitMs ?? DEFAULT_WEBHOOK_ARCHIVE_WAIT_MS,
    policy: { allowHosts: new Set(opts.webhooks?.allowHosts ?? []), allowLoopback: opts.webhooks?.allowLoopback ?? false }
  }
  const archive = opts.archive ? { ...DEFAULT_ARCHIVE, ...opts.archive } : null
  const retention = createRetention(opts.db)
  const retentionSettings = { ...DEFAULT_RETENTION, ...opts.retention }
  const credits = { ...DEFAULT_CREDITS, ...opts.credits }
  // The credits worker's last reading, shown by the admin overview.
  const creditReading = createCreditReading()
  const adminKeys = opts.adminKeys ?? []
  const services: Services = { repo, kie, metrics, clock, queue, reconcile, dispatcher, waiters, signals, webhooks, archive, credits, creditReading, retention, retentionSettings }
  app.decorate('services', services)

  // Start-up recovery, once, before the first request or worker: see recovery.ts.
  app.addHook('onReady', async () => recoverFromLastStop({ repo, clock, kieTimeoutMs: opts.kieTimeoutMs ?? 20_000, log: app.log }))
  app.addHook('preClose', async () => waiters.releaseAll())

  await app.register(httpConventions)
  await app.register(errorHandler)
  await app.register(openapi, { version: opts.version ?? '0.0.0', publicBaseUrl: typeof opts.publicBaseUrl === 'string' ? opts.publicBaseUrl : undefined, admin: adminKeys.length > 0 })
  await app.register(requireHost)
  // Wrong keys per address, counted by the client routes' authentication (plugins/client-auth).
  app.decorate('authFailures', createAuthFailures(opts.authFailures ?? {}, () => clock.now()))
  // Per client key, after authentication (preHandler); health and kie.ai's callbacks opt out.
  const limit = opts.clientRateLimit ?? { max: 600, windowMs: 60_000 }
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: limit.max,
    timeWindow: limit.windowMs,
    keyGenerator: (request) => request.clientId ?? request.ip,
    errorResponseBuilder: (_request, context) => new ClientRateLimitedError(context.max, Math.ceil(context.ttl / 1000))
  })
  const { apiKeys } = opts
  await app.register(healthRoutes, { repo, expectedMigrations: loadMigrations().length })
  // Every kind of task is seen and submitted the same way.
  const view = (row: TaskViewRow) =>
    toTask(row, estimateQueue(row, repo, dispatcher, clock.now()), row.files ?? (row.status === 'succeeded' ? repo.resultFiles(row.id) : []))
  const submit = createSubmitter({ repo, commits, dispatcher, clock, queue, signals, webhooks, view })
  await app.register(upscaleRoutes, { apiKeys, repo, waiters, submit, view })
  await app.register(taskRoutes, { apiKeys, repo, waiters, submit, view })
  await app.register(deliveryRoutes, { apiKeys, repo, clock, signals, webhookAttempts: webhooks.scheduleMs.length })
  await app.register(resultRoutes, { apiKeys, repo })
  await app.register(metricsRoutes, { metrics, token: opts.metricsToken ?? null })
  // Without an admin key the admin API does not exist: /admin/... is 404 like any unknown route.
  if (adminKeys.length > 0) {
    await app.register(adminRoutes, {
      adminKeys,
      repo,
      clock,
      signals,
      dispatcher,
      view,
      creditReading,
      webhookAttempts: webhooks.scheduleMs.length,
      archiveDir: archive?.dir ?? null
    })
  }
  // The operator console's page (src/console/), on the admin API; 404 without an admin key.
  await app.register(consolePlugin, { enabled: adminKeys.length > 0 })
  await app.register(callbackRoutes, {
    repo,
    commits,
    clock,
    metrics,
    signals,
    tokenSecrets: [opts.callbackSecret, ...(opts.previousCallbackSecrets ?? [])],
    hmacKeys: opts.kieWebhookHmacKey ? [opts.kieWebhookHmacKey, ...(opts.previousKieWebhookHmacKeys ?? [])] : [],
    refusedLogMax: opts.callbackRefusedLogMax ?? DEFAULT_CALLBACK_REFUSED_LOG_MAX
  })
  await app.register(workers, { enabled: opts.workers ?? true, repo, commits, kie, dispatcher, clock, reconcile, metrics, signals, fanout, webhooks, archive, credits, creditReading, retention, retentionSettings })
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
