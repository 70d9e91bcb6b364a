import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { buildApp } from './app.js'
import { configErrorMessage, generateSecret, loadConfig, type Config } from './config.js'
import { ConfigError } from './errors.js'
import { openDatabase } from './db/open.js'
import { createRepository } from './db/repository.js'
import { createKieClient } from './kie/client.js'
import { createLogger } from './logger.js'
import { startSimulator, type RunningSimulator } from './simulator/index.js'

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

async function main(config: Config) {
  const log = createLogger(config.logLevel)
  const db = openDatabase(config.databasePath)
  const settings = createRepository(db)

  // Sandbox mode: no kie.ai key outside production means the built-in simulator stands in.
  const sandbox = config.kieApiKey === null
  let simulator: RunningSimulator | null = null
  let kieBaseUrl = config.kieBaseUrl
  let kieApiKey = config.kieApiKey ?? ''
  let hmacKey = config.kieWebhookHmacKey
  if (sandbox) {
    kieApiKey = 'sandbox-kie-key'
    hmacKey ??= settings.getOrCreateSetting('sandbox_webhook_hmac_key', () => generateSecret())
    simulator = await startSimulator({
      apiKey: kieApiKey,
      hmacKey,
      host: '127.0.0.1',
      port: config.sandboxSimulatorPort,
      completionDelayMs: 3000,
      logger: log.child({ component: 'simulator' })
    })
    kieBaseUrl = simulator.url
    log.warn(
      { simulatorUrl: simulator.url, simulatorApiKey: kieApiKey },
      '*** SANDBOX MODE: KIE_API_KEY is not set, so kie.ai is replaced by the built-in simulator. NO REAL UPSCALES ARE MADE. ***'
    )
  }
  let apiKeys = config.apiKeys
  if (apiKeys.length === 0) {
    const devKey = settings.getOrCreateSetting('development_api_key', () => `dev_${generateSecret()}`)
    apiKeys = [devKey]
    log.warn({ developmentApiKey: devKey }, `API_KEYS is not set: sandbox development key is ${devKey} (send "Authorization: Bearer ${devKey}")`)
    if (!isLoopback(config.host)) {
      log.warn({ host: config.host }, `HOST=${config.host}: the development key above works from other machines too; unset HOST to listen on 127.0.0.1 only`)
    }
  }
  // The admin API (the operator console's data): off in production without ADMIN_API_KEYS.
  let adminKeys = config.adminKeys
  if (adminKeys.length === 0 && !config.production) {
    const adminKey = settings.getOrCreateSetting('development_admin_key', () => `admin_${generateSecret()}`)
    adminKeys = [adminKey]
    log.warn({ developmentAdminKey: adminKey }, `ADMIN_API_KEYS is not set: sandbox admin key is ${adminKey} (for /console and /admin/...: "Authorization: Bearer ${adminKey}")`)
    if (!isLoopback(config.host)) {
      log.warn({ host: config.host }, `HOST=${config.host}: the sandbox admin key above works from other machines too; unset HOST to listen on 127.0.0.1 only`)
    }
  }
  const callbackSecret = config.callbackSecret ?? settings.getOrCreateSetting('callback_secret', () => generateSecret(32))
  const publicBaseUrl = config.publicBaseUrl ?? `http://127.0.0.1:${config.port}`
  let webhookSecret = config.webhookSecret
  if (webhookSecret === null && sandbox) {
    webhookSecret = settings.getOrCreateSetting('sandbox_webhook_secret', () => `whsec_${randomBytes(24).toString('base64')}`)
    log.warn({ webhookSecret }, 'WEBHOOK_SECRET is not set: sandbox webhooks are signed with this secret')
  }

  const app = await buildApp({
    db,
    kie: createKieClient({ baseUrl: kieBaseUrl, apiKey: kieApiKey, timeoutMs: config.kieTimeoutMs, log }),
    apiKeys,
    adminKeys,
    publicBaseUrl,
    callbackSecret,
    previousCallbackSecrets: config.previousCallbackSecrets,
    kieWebhookHmacKey: hmacKey,
    previousKieWebhookHmacKeys: config.previousKieWebhookHmacKeys,
    queue: config.queue,
    reconcile: config.reconcile,
    credits: config.credits,
    retention: config.retention,
    callbackRefusedLogMax: config.callbackRefusedLogMax,
    kieTimeoutMs: config.kieTimeoutMs,
    webhooks: {
      secret: webhookSecret,
      scheduleMs: config.webhookRetryScheduleMs,
      allowHosts: config.webhookAllowHosts,
      // Sandbox receivers usually run on the same machine.
      allowLoopback: sandbox,
      archiveWaitMs: config.webhookArchiveWaitMs
    },
    clientRateLimit: config.clientRateLimit,
    authFailures: { max: config.authFailuresMax },
    trustProxy: config.trustProxy,
    metricsToken: config.metricsToken,
    archive: {
      dir: config.results.dir,
      maxBytes: config.results.maxBytes,
      // Sandbox results come from the simulator's own file server.
      hosts: simulator ? [...config.results.hosts, new URL(simulator.url).host] : config.results.hosts,
      ttlMs: config.results.ttlMs
    },
    version: packageVersion(),
    loggerInstance: log
  })

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      log.error('shutdown took longer than 10 s; exiting')
      process.exit(1)
    }, 10_000)
    force.unref()
    try {
      await app.close()
      await simulator?.close()
      db.close()
      log.info('shut down cleanly')
      process.exit(0)
    } catch (err) {
      log.error({ err }, 'error during shutdown')
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ port: config.port, host: config.host })
  log.info({ publicBaseUrl, sandbox }, 'gateway ready')
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

// A configuration error is the operator's to fix: what to change, no stack trace.
function exitForConfigError(err: ConfigError): never {
  process.stderr.write(`Configuration error: ${configErrorMessage(err)}\n`)
  process.exit(1)
}

let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  exitForConfigError(err)
}
main(config).catch((err: unknown) => {
  if (err instanceof ConfigError) exitForConfigError(err)
  process.stderr.write(`Fatal: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
