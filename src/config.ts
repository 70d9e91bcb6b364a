import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigError } from './errors.js'
import { parseClientKey } from './plugins/client-auth.js'
import type { RetentionSettings } from './db/retention.js'
import { IDEMPOTENCY_TTL_MS } from './tasks/idempotency.js'

const DAY_MS = 86_400_000

const url = (what: string) => Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s?#]*$', description: `an http(s) URL ${what}` })
const int = (what: string) => Type.String({ pattern: '^[0-9]{1,9}$', description: what })

const TRUST_PROXY_DESCRIPTION = 'true, false, or a comma-separated list of proxy IP addresses and CIDRs (or loopback, linklocal, uniquelocal)'

// Every variable the gateway reads. Each `description` completes "NAME must be ...".
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Optional(Type.String({ minLength: 1, description: 'a non-empty string such as production' })),
  PORT: Type.Optional(int('an integer from 0 to 65535')),
  HOST: Type.Optional(Type.String({ minLength: 1, description: 'a host name or IP address to listen on' })),
  LOG_LEVEL: Type.Optional(
    Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { description: 'one of fatal, error, warn, info, debug, trace, silent' }
    )
  ),
  DATABASE_PATH: Type.Optional(Type.String({ minLength: 1, description: 'a file path' })),
  PUBLIC_BASE_URL: Type.Optional(url('without query, e.g. https://gateway.example.com')),
  KIE_API_KEY: Type.Optional(Type.String({ minLength: 1, description: 'a non-empty kie.ai API key' })),
  KIE_BASE_URL: Type.Optional(url('such as https://api.kie.ai')),
  KIE_WEBHOOK_HMAC_KEY: Type.Optional(Type.String({ minLength: 1, description: 'the webhookHmacKey of the kie.ai account' })),
  KIE_TIMEOUT_MS: Type.Optional(int('a whole number of milliseconds')),
  API_KEYS: Type.Optional(
    Type.String({ pattern: '^\\s*[^,\\s]{16,}\\s*(,\\s*[^,\\s]{16,}\\s*)*,?\\s*$', description: 'a comma-separated list of keys, each at least 16 characters without spaces' })
  ),
  ADMIN_API_KEYS: Type.Optional(
    Type.String({ pattern: '^\\s*[^,\\s]{16,}\\s*(,\\s*[^,\\s]{16,}\\s*)*,?\\s*$', description: 'a comma-separated list of admin keys, each at least 16 characters without spaces' })
  ),
  KIE_RATE_LIMIT_MAX: Type.Optional(int('a positive whole number of requests')),
  KIE_RATE_LIMIT_WINDOW_MS: Type.Optional(int('a positive whole number of milliseconds')),
  SUBMIT_DEADLINE_MS: Type.Optional(int('a whole number of milliseconds')),
  RECONCILE_AFTER_MS: Type.Optional(int('a whole number of milliseconds')),
  TASK_TIMEOUT_MS: Type.Optional(int('a whole number of milliseconds')),
  OUTCOME_UNKNOWN_AFTER_MS: Type.Optional(int('a whole number of milliseconds')),
  RETRY_BASE_MS: Type.Optional(int('a whole number of milliseconds')),
  RETRY_CAP_MS: Type.Optional(int('a whole number of milliseconds')),
  CIRCUIT_FAILURE_THRESHOLD: Type.Optional(int('a positive whole number')),
  CIRCUIT_COOLDOWN_MS: Type.Optional(int('a whole number of milliseconds')),
  KIE_SERVER_ERROR_RETRIES: Type.Optional(int('a whole number of retries')),
  KIE_CREDITS_POLL_MS: Type.Optional(int('a positive whole number of milliseconds')),
  KIE_CREDITS_WARN_BELOW: Type.Optional(int('a whole number of credits')),
  CALLBACK_REFUSED_LOG_MAX: Type.Optional(int('a whole number of deliveries per minute')),
  CALLBACK_LOG_RETENTION_DAYS: Type.Optional(int('a positive whole number of days')),
  WEBHOOK_LOG_RETENTION_DAYS: Type.Optional(int('a positive whole number of days')),
  TASK_RETENTION_DAYS: Type.Optional(int('a positive whole number of days')),
  WEBHOOK_ARCHIVE_WAIT_MS: Type.Optional(int('a whole number of milliseconds')),
  WEBHOOK_SECRET: Type.Optional(Type.String({ pattern: '^whsec_[A-Za-z0-9+/]{22,}={0,2}$', description: 'a Standard Webhooks secret: whsec_ followed by base64 of at least 16 bytes' })),
  WEBHOOK_RETRY_SCHEDULE: Type.Optional(
    Type.String({ pattern: '^\\s*\\d+(ms|s|m|h|d)\\s*(,\\s*\\d+(ms|s|m|h|d)\\s*)*$', description: 'a comma-separated list of delays such as 5s,5m,30m,2h' })
  ),
  WEBHOOK_ALLOW_HOSTS: Type.Optional(Type.String({ pattern: '^[^\\s,]+(\\s*,\\s*[^\\s,]+)*$', description: 'a comma-separated list of host names or IP addresses' })),
  CLIENT_RATE_LIMIT_MAX: Type.Optional(int('a positive whole number of requests')),
  CLIENT_RATE_LIMIT_WINDOW_MS: Type.Optional(int('a positive whole number of milliseconds')),
  AUTH_FAILURES_MAX: Type.Optional(int('a positive whole number of failed authentications')),
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1, description: TRUST_PROXY_DESCRIPTION })),
  RESULTS_DIR: Type.Optional(Type.String({ minLength: 1, description: 'a folder path' })),
  RESULT_MAX_BYTES: Type.Optional(int('a positive whole number of bytes')),
  RESULT_HOSTS: Type.Optional(Type.String({ pattern: '^[^\\s,]+(\\s*,\\s*[^\\s,]+)*$', description: 'a comma-separated list of host names (host or host:port)' })),
  RESULTS_TTL_DAYS: Type.Optional(int('a positive whole number of days')),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'a token of at least 16 characters' })),
  SANDBOX_SIMULATOR_PORT: Type.Optional(int('a port from 0 to 65535 (0 picks a free one)')),
  CALLBACK_SECRET_PREVIOUS: Type.Optional(Type.String({ pattern: '^[^,\\s]{32,}(\\s*,\\s*[^,\\s]{32,})*$', description: 'a comma-separated list of earlier secrets, 32+ characters each' })),
  KIE_WEBHOOK_HMAC_KEY_PREVIOUS: Type.Optional(Type.String({ pattern: '^[^,\\s]+(\\s*,\\s*[^,\\s]+)*$', description: 'a comma-separated list of earlier webhookHmacKeys' })),
  CALLBACK_SECRET: Type.Optional(Type.String({ minLength: 32, description: 'a secret of at least 32 characters' }))
})
type Env = Static<typeof EnvSchema>

const REQUIRED_IN_PRODUCTION = ['KIE_API_KEY', 'PUBLIC_BASE_URL', 'API_KEYS', 'CALLBACK_SECRET'] as const

/** What to put in each variable production requires, for the message that asks for them. */
const TO_FILL_IN: Record<(typeof REQUIRED_IN_PRODUCTION)[number], string> = {
  KIE_API_KEY: 'your kie.ai API key',
  PUBLIC_BASE_URL: 'the URL at which kie.ai reaches this gateway, e.g. https://gateway.example.com',
  API_KEYS: 'your clients\' keys, 16+ characters each, comma-separated (sent as "Authorization: Bearer <key>")',
  CALLBACK_SECRET: 'a random secret of 32+ characters'
}

/** A value nobody means: "change-me" (also changeme, CHANGE_ME, inside a longer value) or "<...>". */
const PLACEHOLDER = /change[-_]?me|^<[^>]*>$/i

/**
 * Variables that still need a value: unset although NODE_ENV=production requires them, or
 * left at a placeholder. `message` is one line; `configErrorMessage` says how to fill them in.
 */
export class UnfilledConfigError extends ConfigError {
  constructor(
    readonly missing: readonly string[],
    readonly placeholders: Readonly<Record<string, string>>,
    readonly production: boolean
  ) {
    const names = Object.keys(placeholders)
    const values = [...new Set(Object.values(placeholders))].map((v) => JSON.stringify(v)).join(', ')
    super([
      missing.length > 0 ? `${missing.join(', ')} must be set when NODE_ENV=production` : '',
      names.length === 1 ? `${names[0]} is still a placeholder (${values})` : '',
      names.length > 1 ? `${names.join(', ')} are still placeholders (${values})` : ''
    ].filter(Boolean).join('; '))
  }
}

/** What the process prints for a configuration error (after "Configuration error: "). */
export function configErrorMessage(err: ConfigError): string {
  if (!(err instanceof UnfilledConfigError)) return err.message
  const names = [...err.missing, ...Object.keys(err.placeholders)]
  const width = Math.max(...names.map((n) => n.length))
  const lines = names.map((name) => {
    const what = TO_FILL_IN[name as keyof typeof TO_FILL_IN] ?? (EnvSchema.properties as Record<string, TSchema>)[name]?.description ?? 'a valid value'
    const required = err.production && (REQUIRED_IN_PRODUCTION as readonly string[]).includes(name)
    const blank = required ? '' : name === 'KIE_API_KEY' ? ', or blank for sandbox mode' : ', or blank for the default'
    return `  ${name.padEnd(width)}  ${what}${blank}`
  })
  const secret = names.some((n) => n === 'API_KEYS' || n === 'ADMIN_API_KEYS' || n === 'CALLBACK_SECRET' || n === 'METRICS_TOKEN')
  return [
    `${err.message}.`,
    'Fill in (in .env, or in the environment):',
    ...lines,
    ...(secret ? ['A random key or secret: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64url\'))"'] : []),
    ...(err.production && names.includes('KIE_API_KEY')
      ? ['Or, to try the gateway without kie.ai first, delete NODE_ENV=production (sandbox mode, see README): KIE_API_KEY, PUBLIC_BASE_URL, API_KEYS and CALLBACK_SECRET may then stay blank.']
      : [])
  ].join('\n')
}

export interface Config {
  readonly production: boolean
  readonly port: number
  readonly host: string
  readonly logLevel: string
  readonly databasePath: string
  /** null in sandbox mode until the server knows its own address. */
  readonly publicBaseUrl: string | null
  /** null means sandbox mode: the built-in simulator stands in for kie.ai. */
  readonly kieApiKey: string | null
  readonly kieBaseUrl: string
  readonly kieWebhookHmacKey: string | null
  readonly kieTimeoutMs: number
  /** Empty in sandbox mode until a development key is generated. */
  readonly apiKeys: readonly string[]
  /** Keys of the admin API (/admin/...): empty = off in production, a generated one outside it. */
  readonly adminKeys: readonly string[]
  readonly callbackSecret: string | null
  readonly previousCallbackSecrets: readonly string[]
  readonly previousKieWebhookHmacKeys: readonly string[]
  readonly queue: QueueSettings
  readonly reconcile: ReconcileSettings
  /** null: webhooks to clients are off (sandbox mode generates one). */
  readonly webhookSecret: string | null
  readonly webhookRetryScheduleMs: readonly number[]
  readonly webhookAllowHosts: readonly string[]
  readonly clientRateLimit: { readonly max: number; readonly windowMs: number }
  /** Wrong client keys one address may send per minute before it is refused. */
  readonly authFailuresMax: number
  /** false: X-Forwarded-For is ignored; else the proxies whose X-Forwarded-For is believed. */
  readonly trustProxy: boolean | readonly string[]
  readonly results: { readonly dir: string; readonly maxBytes: number; readonly hosts: readonly string[]; readonly ttlMs: number | null }
  /** null: /metrics is open (protect it at the network level). */
  readonly metricsToken: string | null
  /** Where sandbox mode runs the built-in simulator (loopback only). */
  readonly sandboxSimulatorPort: number
  readonly credits: CreditSettings
  /** Refused callback deliveries stored per minute per source address; the rest are only counted. */
  readonly callbackRefusedLogMax: number
  readonly retention: RetentionSettings
  /** How long a success webhook waits for the result archive before it goes anyway. */
  readonly webhookArchiveWaitMs: number
}

/** How often kie.ai's credit balance is asked, and below what it is worth a warning. */
export interface CreditSettings {
  readonly pollMs: number
  readonly warnBelow: number
}

export const DEFAULT_RETENTION: RetentionSettings = Object.freeze({
  callbackLogMs: 30 * DAY_MS,
  webhookLogMs: 30 * DAY_MS,
  taskMs: null,
  idempotencyMs: IDEMPOTENCY_TTL_MS
})
export const DEFAULT_CALLBACK_REFUSED_LOG_MAX = 60
export const DEFAULT_WEBHOOK_ARCHIVE_WAIT_MS = 60_000

export const DEFAULT_CREDITS: CreditSettings = Object.freeze({ pollMs: 300_000, warnBelow: 100 })

/** The send queue: pacing, retries, the submit deadline and the circuit breaker. */
export interface QueueSettings {
  readonly rateLimitMax: number
  readonly rateLimitWindowMs: number
  readonly submitDeadlineMs: number
  readonly retryBaseMs: number
  readonly retryCapMs: number
  readonly circuitFailureThreshold: number
  readonly circuitCooldownMs: number
  /** Envelope-500 answers retried for one task before it fails (kie.ai uses 500 for some bad requests). */
  readonly serverErrorRetries: number
}

/** Reconciliation with record-info and the timeouts of submitted tasks. */
export interface ReconcileSettings {
  readonly reconcileAfterMs: number
  readonly taskTimeoutMs: number
  readonly outcomeUnknownAfterMs: number
}

export const DEFAULT_RECONCILE: ReconcileSettings = Object.freeze({
  reconcileAfterMs: 60_000,
  taskTimeoutMs: 30 * 60_000,
  // kie.ai calls back when the task ends, then retries after 1, 5 and 15 minutes: 21 minutes
  // of retries plus time to generate and a margin.
  outcomeUnknownAfterMs: 35 * 60_000
})

export const DEFAULT_QUEUE: QueueSettings = Object.freeze({
  rateLimitMax: 20,
  rateLimitWindowMs: 10_000,
  submitDeadlineMs: 30 * 60_000,
  retryBaseMs: 1000,
  retryCapMs: 60_000,
  circuitFailureThreshold: 5,
  circuitCooldownMs: 30_000,
  serverErrorRetries: 3
})


export function loadConfig(env: Record<string, string | undefined>): Config {
  // Blank values count as unset, the way .env files are usually written.
  const present: Record<string, string> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key]?.trim()
    if (value) present[key] = value
  }
  // Placeholders and what production lacks first, all named at once: they are what a copied
  // .env.example still needs, and "must be 16 characters" would not say so.
  const placeholders = Object.fromEntries(Object.entries(present).filter(([, v]) => PLACEHOLDER.test(v)))
  const production = present.NODE_ENV === 'production'
  const missing = production ? REQUIRED_IN_PRODUCTION.filter((k) => !present[k]) : []
  if (missing.length > 0 || Object.keys(placeholders).length > 0) throw new UnfilledConfigError(missing, placeholders, production)
  const first = Value.Errors(EnvSchema, present).First()
  if (first) {
    const name = first.path.replace(/^\//, '')
    const schema = (EnvSchema.properties as Record<string, TSchema>)[name]
    throw new ConfigError(`${name} must be ${schema?.description ?? 'valid'} (got ${JSON.stringify(present[name])})`)
  }
  const e = present as Env
  const port = Number(e.PORT ?? 3000)
  const sandboxSimulatorPort = Number(e.SANDBOX_SIMULATOR_PORT ?? 4010)
  for (const [name, value] of [['PORT', port], ['SANDBOX_SIMULATOR_PORT', sandboxSimulatorPort]] as const) {
    if (value > 65535) throw new ConfigError(`${name} must be an integer from 0 to 65535 (got ${value})`)
  }
  // kie.ai must be able to call back: a real key needs a real public address.
  if (e.KIE_API_KEY && !e.PUBLIC_BASE_URL) throw new ConfigError('PUBLIC_BASE_URL must be set when KIE_API_KEY is set')
  if (!e.PUBLIC_BASE_URL && port === 0) throw new ConfigError('PUBLIC_BASE_URL must be set when PORT=0')
  // A client key is never an admin key, nor the other way round.
  const apiKeys = splitList(e.API_KEYS)
  const adminKeys = splitList(e.ADMIN_API_KEYS)
  const clientKeys = new Set(apiKeys.map((k) => parseClientKey(k).key))
  if (adminKeys.some((k) => clientKeys.has(parseClientKey(k).key))) throw new ConfigError('ADMIN_API_KEYS must not repeat a key of API_KEYS: admin keys and client keys are separate')
  return Object.freeze({
    production,
    port,
    // Loopback outside production: sandbox mode logs a working development key. The container
    // sets HOST=0.0.0.0 (its interfaces are its own; the port mapping decides who reaches it).
    host: e.HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    logLevel: e.LOG_LEVEL ?? 'info',
    databasePath: e.DATABASE_PATH ?? './data/gateway.db',
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, '') ?? null,
    kieApiKey: e.KIE_API_KEY ?? null,
    kieBaseUrl: (e.KIE_BASE_URL ?? 'https://api.kie.ai').replace(/\/+$/, ''),
    kieWebhookHmacKey: e.KIE_WEBHOOK_HMAC_KEY ?? null,
    kieTimeoutMs: Number(e.KIE_TIMEOUT_MS ?? 20_000),
    apiKeys: Object.freeze(apiKeys),
    adminKeys: Object.freeze(adminKeys),
    callbackSecret: e.CALLBACK_SECRET ?? null,
    previousCallbackSecrets: Object.freeze(splitList(e.CALLBACK_SECRET_PREVIOUS)),
    previousKieWebhookHmacKeys: Object.freeze(splitList(e.KIE_WEBHOOK_HMAC_KEY_PREVIOUS)),
    sandboxSimulatorPort,
    webhookSecret: e.WEBHOOK_SECRET ?? null,
    metricsToken: e.METRICS_TOKEN ?? null,
    results: Object.freeze({
      dir: e.RESULTS_DIR ?? join(dirname(e.DATABASE_PATH ?? './data/gateway.db'), 'results'),
      maxBytes: positive('RESULT_MAX_BYTES', e.RESULT_MAX_BYTES, 50 * 1024 * 1024),
      hosts: Object.freeze(splitList(e.RESULT_HOSTS ?? 'tempfile.aiquickdraw.com,tempfile.redpandaai.co').map((h) => h.toLowerCase())),
      ttlMs: e.RESULTS_TTL_DAYS ? positive('RESULTS_TTL_DAYS', e.RESULTS_TTL_DAYS, 1) * 86_400_000 : null
    }),
    webhookRetryScheduleMs: Object.freeze(parseDurations(e.WEBHOOK_RETRY_SCHEDULE ?? DEFAULT_WEBHOOK_RETRY_SCHEDULE)),
    webhookAllowHosts: Object.freeze(splitList(e.WEBHOOK_ALLOW_HOSTS).map((h) => h.toLowerCase())),
    clientRateLimit: Object.freeze({
      max: positive('CLIENT_RATE_LIMIT_MAX', e.CLIENT_RATE_LIMIT_MAX, 600),
      windowMs: positive('CLIENT_RATE_LIMIT_WINDOW_MS', e.CLIENT_RATE_LIMIT_WINDOW_MS, 60_000)
    }),
    authFailuresMax: positive('AUTH_FAILURES_MAX', e.AUTH_FAILURES_MAX, 20),
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    queue: Object.freeze({
      rateLimitMax: positive('KIE_RATE_LIMIT_MAX', e.KIE_RATE_LIMIT_MAX, DEFAULT_QUEUE.rateLimitMax),
      rateLimitWindowMs: positive('KIE_RATE_LIMIT_WINDOW_MS', e.KIE_RATE_LIMIT_WINDOW_MS, DEFAULT_QUEUE.rateLimitWindowMs),
      submitDeadlineMs: Number(e.SUBMIT_DEADLINE_MS ?? DEFAULT_QUEUE.submitDeadlineMs),
      retryBaseMs: Number(e.RETRY_BASE_MS ?? DEFAULT_QUEUE.retryBaseMs),
      retryCapMs: Number(e.RETRY_CAP_MS ?? DEFAULT_QUEUE.retryCapMs),
      circuitFailureThreshold: positive('CIRCUIT_FAILURE_THRESHOLD', e.CIRCUIT_FAILURE_THRESHOLD, DEFAULT_QUEUE.circuitFailureThreshold),
      circuitCooldownMs: Number(e.CIRCUIT_COOLDOWN_MS ?? DEFAULT_QUEUE.circuitCooldownMs),
      serverErrorRetries: Number(e.KIE_SERVER_ERROR_RETRIES ?? DEFAULT_QUEUE.serverErrorRetries)
    }),
    callbackRefusedLogMax: Number(e.CALLBACK_REFUSED_LOG_MAX ?? DEFAULT_CALLBACK_REFUSED_LOG_MAX),
    webhookArchiveWaitMs: Number(e.WEBHOOK_ARCHIVE_WAIT_MS ?? DEFAULT_WEBHOOK_ARCHIVE_WAIT_MS),
    retention: Object.freeze({
      callbackLogMs: positive('CALLBACK_LOG_RETENTION_DAYS', e.CALLBACK_LOG_RETENTION_DAYS, 30) * DAY_MS,
      webhookLogMs: positive('WEBHOOK_LOG_RETENTION_DAYS', e.WEBHOOK_LOG_RETENTION_DAYS, 30) * DAY_MS,
      taskMs: e.TASK_RETENTION_DAYS ? positive('TASK_RETENTION_DAYS', e.TASK_RETENTION_DAYS, 1) * DAY_MS : null,
      idempotencyMs: IDEMPOTENCY_TTL_MS
    }),
    reconcile: Object.freeze({
      reconcileAfterMs: Number(e.RECONCILE_AFTER_MS ?? DEFAULT_RECONCILE.reconcileAfterMs),
      taskTimeoutMs: Number(e.TASK_TIMEOUT_MS ?? DEFAULT_RECONCILE.taskTimeoutMs),
      outcomeUnknownAfterMs: Number(e.OUTCOME_UNKNOWN_AFTER_MS ?? DEFAULT_RECONCILE.outcomeUnknownAfterMs)
    }),
    credits: Object.freeze({
      pollMs: positive('KIE_CREDITS_POLL_MS', e.KIE_CREDITS_POLL_MS, DEFAULT_CREDITS.pollMs),
      warnBelow: Number(e.KIE_CREDITS_WARN_BELOW ?? DEFAULT_CREDITS.warnBelow)
    })
  })
}

export const DEFAULT_WEBHOOK_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,10h'
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** "5s,5m,2h" → milliseconds. */
export function parseDurations(list: string): number[] {
  return splitList(list).map((d) => {
    const m = /^(\d+)(ms|s|m|h|d)$/.exec(d) as RegExpExecArray
    return Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  })
}

const splitList = (value: string | undefined) => (value ?? '').split(',').map((v) => v.trim()).filter(Boolean)

function positive(name: string, value: string | undefined, fallback: number): number {
  const n = Number(value ?? fallback)
  if (n < 1) throw new ConfigError(`${name} must be at least 1 (got ${JSON.stringify(value)})`)
  return n
}

const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/**
 * TRUST_PROXY → Fastify's trustProxy. A hop count is refused: Fastify 5 no longer honours one
 * (it cannot tell a proxy from a client that sends its own X-Forwarded-For), so list the proxies.
 */
export function parseTrustProxy(value: string | undefined): boolean | readonly string[] {
  if (value === undefined || value === 'false') return false
  if (value === 'true') return true
  const entries = splitList(value)
  const fail = (why: string) => new ConfigError(`TRUST_PROXY must be ${TRUST_PROXY_DESCRIPTION}${why} (got ${JSON.stringify(value)})`)
  if (/^\d+$/.test(value)) throw fail('; a hop count is not supported, list the proxy addresses')
  for (const entry of entries) {
    const [ip = '', prefix, extra] = entry.split('/')
    const family = isIP(ip)
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32))
    if (!PROXY_RANGES.has(entry) && (family === 0 || !prefixOk || extra !== undefined)) throw fail(`; ${JSON.stringify(entry)} is neither`)
  }
  if (entries.length === 0) throw fail('')
  return Object.freeze(entries)
}

export function generateSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url')
}

/** What readEnvFile did. */
export interface EnvFileRead {
  /** The file read, absolute. */
  readonly path: string
  /** Variables the file set. */
  readonly set: readonly string[]
  /** Variables in the file that the environment already had: the environment's values were kept. */
  readonly kept: readonly string[]
}

/**
 * Reads ENV_FILE (default: .env in the working directory) into process.env with Node's own
 * loader, before the configuration is read. Variables already in the environment win over the
 * file. No .env is no error; an ENV_FILE that cannot be read is one.
 */
export function readEnvFile(cwd = process.cwd()): EnvFileRead | null {
  const chosen = process.env.ENV_FILE?.trim()
  const path = resolve(cwd, chosen || '.env')
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err)
    if (!chosen && code === 'ENOENT') return null
    throw new ConfigError(chosen ? `ENV_FILE must name a readable file (got ${JSON.stringify(chosen)}: ${code})` : `.env cannot be read (${path}: ${code})`)
  }
  const names = Object.keys(parseEnv(text))
  const before = { ...process.env }
  process.loadEnvFile(path)
  // Node keeps the values already set (nodejs/node#49424); made certain, whatever the version.
  for (const [name, value] of Object.entries(before)) if (process.env[name] !== value) process.env[name] = value
  return Object.freeze({ path, set: names.filter((n) => !(n in before)), kept: names.filter((n) => n in before) })
}

/** The line the process prints after readEnvFile. */
export function envFileMessage(read: EnvFileRead): string {
  const kept = read.kept.length > 0 ? `, ${read.kept.join(', ')} kept from the environment (it wins over the file)` : ''
  return `Read ${read.path}: ${read.set.length} variable${read.set.length === 1 ? '' : 's'} set${kept}`
}
