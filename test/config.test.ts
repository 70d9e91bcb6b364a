import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'

const prod = {
  NODE_ENV: 'production',
  KIE_API_KEY: 'kie-key',
  PUBLIC_BASE_URL: 'https://gw.example.com/',
  API_KEYS: 'client-key-1234567890, client-key-abcdefghij',
  CALLBACK_SECRET: 'x'.repeat(32)
}

describe('configuration', () => {
  it('applies the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      production: false,
      port: 3000,
      host: '127.0.0.1',
      logLevel: 'info',
      databasePath: './data/gateway.db',
      kieBaseUrl: 'https://api.kie.ai',
      kieApiKey: null,
      publicBaseUrl: null,
      apiKeys: []
    })
  })

  it('listens on loopback outside production and on every interface in production, unless HOST says otherwise', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1')
    expect(loadConfig({ NODE_ENV: 'development' }).host).toBe('127.0.0.1')
    expect(loadConfig({ NODE_ENV: 'test', HOST: ' ' }).host).toBe('127.0.0.1')
    expect(loadConfig(prod).host).toBe('0.0.0.0')
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0')
    expect(loadConfig({ ...prod, HOST: '127.0.0.1' }).host).toBe('127.0.0.1')
  })

  it('reads a complete production configuration', () => {
    const c = loadConfig(prod)
    expect(c).toMatchObject({ production: true, publicBaseUrl: 'https://gw.example.com', apiKeys: ['client-key-1234567890', 'client-key-abcdefghij'] })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it.each(['KIE_API_KEY', 'PUBLIC_BASE_URL', 'API_KEYS', 'CALLBACK_SECRET'])('refuses production without %s, naming it', (name) => {
    expect(() => loadConfig({ ...prod, [name]: '' })).toThrow(new RegExp(`^${name} must be set when NODE_ENV=production$`))
  })

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['PUBLIC_BASE_URL', 'gw.example.com'],
    ['KIE_BASE_URL', 'ftp://x'],
    ['API_KEYS', 'short'],
    ['CALLBACK_SECRET', 'too-short'],
    ['KIE_TIMEOUT_MS', '-5']
  ])('refuses a malformed %s=%s with one line naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name} must be `))
  })

  it('needs a public address when a real kie.ai key is set', () => {
    expect(() => loadConfig({ KIE_API_KEY: 'k' })).toThrow(/^PUBLIC_BASE_URL must be set when KIE_API_KEY is set$/)
  })
})
