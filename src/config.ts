import { randomBytes } from 'node:crypto'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

const url = (what: string) => Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s?#]*$', description: `an http(s) URL ${what}` })
const int = (what: string) => Type.String({ pattern: '^[0-9]{1,9}$', description: what })

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
  SANDBOX_SIMULATOR_PORT: Type.Optional(int('a port from 0 to 65535 (0 picks a free one)')),
  CALLBACK_SECRET: Type.Optional(Type.String({ minLength: 32, description: 'a secret of at least 32 characters' }))
})
type Env = Static<typeof EnvSchema>

const REQUIRED_IN_PRODUCTION = ['KIE_API_KEY', 'PUBLIC_BASE_URL', 'API_KEYS', 'CALLBACK_SECRET'] as const

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
  readonly callbackSecret: string | null
  /** Where sandbox mode runs the built-in simulator (loopback only). */
  readonly sandboxSimulatorPort: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  // Blank values count as unset, the way .env files are usually written.
  const present: Record<string, string> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key]?.trim()
    if (value) present[key] = value
  }
  const first = Value.Errors(EnvSchema, present).First()
  if (first) {
    const name = first.path.replace(/^\//, '')
    const schema = (EnvSchema.properties as Record<string, TSchema>)[name]
    throw new ConfigError(`${name} must be ${schema?.description ?? 'valid'} (got ${JSON.stringify(present[name])})`)
  }
  const e = present as Env
  const production = e.NODE_ENV === 'production'
  if (production) {
    const missing = REQUIRED_IN_PRODUCTION.filter((k) => !e[k])
    if (missing.length > 0) throw new ConfigError(`${missing.join(', ')} must be set when NODE_ENV=production`)
  }
  const port = Number(e.PORT ?? 3000)
  const sandboxSimulatorPort = Number(e.SANDBOX_SIMULATOR_PORT ?? 4010)
  for (const [name, value] of [['PORT', port], ['SANDBOX_SIMULATOR_PORT', sandboxSimulatorPort]] as const) {
    if (value > 65535) throw new ConfigError(`${name} must be an integer from 0 to 65535 (got ${value})`)
  }
  // kie.ai must be able to call back: a real key needs a real public address.
  if (e.KIE_API_KEY && !e.PUBLIC_BASE_URL) throw new ConfigError('PUBLIC_BASE_URL must be set when KIE_API_KEY is set')
  if (!e.PUBLIC_BASE_URL && port === 0) throw new ConfigError('PUBLIC_BASE_URL must be set when PORT=0')
  return Object.freeze({
    production,
    port,
    host: e.HOST ?? '0.0.0.0',
    logLevel: e.LOG_LEVEL ?? 'info',
    databasePath: e.DATABASE_PATH ?? './data/gateway.db',
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, '') ?? null,
    kieApiKey: e.KIE_API_KEY ?? null,
    kieBaseUrl: (e.KIE_BASE_URL ?? 'https://api.kie.ai').replace(/\/+$/, ''),
    kieWebhookHmacKey: e.KIE_WEBHOOK_HMAC_KEY ?? null,
    kieTimeoutMs: Number(e.KIE_TIMEOUT_MS ?? 20_000),
    apiKeys: Object.freeze((e.API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean)),
    callbackSecret: e.CALLBACK_SECRET ?? null,
    sandboxSimulatorPort
  })
}

export function generateSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url')
}
