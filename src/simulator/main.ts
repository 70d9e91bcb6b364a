import { pino } from 'pino'
import { startSimulator } from './index.js'

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`)
  return value
}

const log = pino({ name: 'kie-simulator', redact: ['req.headers.authorization'] })

async function main(): Promise<void> {
  const apiKey = process.env.SIMULATOR_API_KEY ?? 'sim-key'
  const hmacKey = process.env.SIMULATOR_HMAC_KEY
  const running = await startSimulator({
    apiKey,
    ...(hmacKey !== undefined && hmacKey !== '' ? { hmacKey } : {}),
    host: process.env.SIMULATOR_HOST ?? '127.0.0.1',
    port: intFromEnv('SIMULATOR_PORT', 4010),
    completionDelayMs: intFromEnv('SIMULATOR_COMPLETION_DELAY_MS', 3000),
    callbackRetryScale: intFromEnv('SIMULATOR_CALLBACK_RETRY_SCALE', 1),
    logger: log
  })
  // The key is the simulator's own made-up token, printed so a developer can point the gateway at it.
  log.info({ url: running.url, apiKey, signed: hmacKey !== undefined && hmacKey !== '' }, 'kie.ai simulator listening')

  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) return
    closing = true
    log.info({ signal }, 'kie.ai simulator shutting down')
    running.close().then(() => process.exit(0), (err: unknown) => {
      log.error({ err }, 'kie.ai simulator failed to close')
      process.exit(1)
    })
  }
  process.once('SIGINT', () => shutdown('SIGINT'))
  process.once('SIGTERM', () => shutdown('SIGTERM'))
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'kie.ai simulator failed to start')
  process.exit(1)
})
