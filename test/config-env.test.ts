import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEnv } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { configErrorMessage, envFileMessage, loadConfig, readEnvFile, UnfilledConfigError } from '../src/config.js'
import { ConfigError } from '../src/errors.js'

const EXAMPLE = new URL('../.env.example', import.meta.url)
const MAIN = new URL('../dist/src/main.js', import.meta.url)
const REQUIRED = ['KIE_API_KEY', 'PUBLIC_BASE_URL', 'API_KEYS', 'CALLBACK_SECRET']
const example = () => parseEnv(readFileSync(EXAMPLE, 'utf8')) as Record<string, string>

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-config-env-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** The message the process prints for what loadConfig refuses. */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return configErrorMessage(err)
    throw err
  }
  throw new Error('loadConfig accepted it')
}

describe('reading .env', () => {
  const NAMES = ['GW_ENV_TEST_FROM_FILE', 'GW_ENV_TEST_REAL', 'GW_ENV_TEST_QUOTED', 'ENV_FILE']
  let saved: Record<string, string | undefined>
  beforeEach(() => {
    saved = Object.fromEntries(NAMES.map((n) => [n, process.env[n]]))
    for (const n of NAMES) delete process.env[n]
  })
  afterEach(() => {
    for (const [n, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[n]
      else process.env[n] = v
    }
  })

  it('sets what the environment lacks; a variable already in the environment wins over the file', () => {
    writeFileSync(join(dir, '.env'), 'GW_ENV_TEST_FROM_FILE=file\nGW_ENV_TEST_REAL=file\n# a comment\nGW_ENV_TEST_QUOTED="a b"\n')
    process.env.GW_ENV_TEST_REAL = 'environment'
    const read = readEnvFile(dir)
    expect(read).toEqual({ path: join(dir, '.env'), set: ['GW_ENV_TEST_FROM_FILE', 'GW_ENV_TEST_QUOTED'], kept: ['GW_ENV_TEST_REAL'] })
    expect(process.env.GW_ENV_TEST_FROM_FILE).toBe('file')
    expect(process.env.GW_ENV_TEST_QUOTED).toBe('a b')
    expect(process.env.GW_ENV_TEST_REAL).toBe('environment')
    expect(envFileMessage(read!)).toBe(`Read ${join(dir, '.env')}: 2 variables set, GW_ENV_TEST_REAL kept from the environment (it wins over the file)`)
  })

  it('does nothing without a .env', () => {
    expect(readEnvFile(dir)).toBeNull()
    expect(process.env.GW_ENV_TEST_FROM_FILE).toBeUndefined()
  })

  it('reads the file ENV_FILE names (relative to the working directory) and refuses one that is missing', () => {
    writeFileSync(join(dir, 'gateway.env'), 'GW_ENV_TEST_FROM_FILE=named\n')
    process.env.ENV_FILE = 'gateway.env'
    expect(readEnvFile(dir)).toMatchObject({ path: join(dir, 'gateway.env'), set: ['GW_ENV_TEST_FROM_FILE'] })
    expect(process.env.GW_ENV_TEST_FROM_FILE).toBe('named')
    process.env.ENV_FILE = 'missing.env'
    expect(() => readEnvFile(dir)).toThrow(/^ENV_FILE must name a readable file \(got "missing.env": ENOENT\)$/)
  })
})

describe('.env.example as copied', () => {
  it('is refused with the four production variables named and how to fill them in', () => {
    const message = refusal(example())
    const lines = message.split('\n')
    expect(lines[0]).toBe('KIE_API_KEY, PUBLIC_BASE_URL, API_KEYS, CALLBACK_SECRET must be set when NODE_ENV=production.')
    expect(lines[1]).toBe('Fill in (in .env, or in the environment):')
    for (const [i, name] of REQUIRED.entries()) expect(lines[2 + i]).toMatch(new RegExp(`^  ${name} +\\S`))
    expect(message).toContain('randomBytes(32)')
    expect(message).toMatch(/delete NODE_ENV=production \(sandbox mode/)
  })

  it('starts in sandbox mode, on loopback, without its NODE_ENV line', () => {
    const { NODE_ENV: _production, ...sandbox } = example()
    expect(loadConfig(sandbox)).toMatchObject({ production: false, kieApiKey: null, host: '127.0.0.1', port: 3000 })
  })

  it('with the four filled in, starts in production on every interface', () => {
    const filled = { ...example(), KIE_API_KEY: 'kie-key', PUBLIC_BASE_URL: 'https://gw.example.com', API_KEYS: 'client-key-1234567890', CALLBACK_SECRET: 'x'.repeat(32) }
    expect(loadConfig(filled)).toMatchObject({ production: true, host: '0.0.0.0', kieApiKey: 'kie-key' })
  })
})

describe('placeholders', () => {
  it('are named before any other check, in every mode', () => {
    const env = { API_KEYS: 'change-me', CALLBACK_SECRET: '<your secret>', PUBLIC_BASE_URL: 'https://CHANGE_ME.example.com', KIE_API_KEY: 'changeme' }
    expect(() => loadConfig(env)).toThrow(UnfilledConfigError)
    const message = refusal(env)
    expect(message.split('\n')[0]).toBe('PUBLIC_BASE_URL, KIE_API_KEY, API_KEYS, CALLBACK_SECRET are still placeholders ("https://CHANGE_ME.example.com", "changeme", "change-me", "<your secret>").')
    expect(message).toMatch(/^ {2}KIE_API_KEY +your kie\.ai API key, or blank for sandbox mode$/m)
    expect(message).toMatch(/^ {2}API_KEYS +.*, or blank for the default$/m)
    expect(message).not.toMatch(/NODE_ENV/)
  })

  it('are named with what production still lacks', () => {
    const message = refusal({ ...example(), KIE_API_KEY: 'kie-key', API_KEYS: 'change-me' })
    expect(message.split('\n')[0]).toBe('PUBLIC_BASE_URL, CALLBACK_SECRET must be set when NODE_ENV=production; API_KEYS is still a placeholder ("change-me").')
    expect(message).not.toMatch(/sandbox/)
  })

  it('leave a malformed value its one line', () => {
    expect(refusal({ PORT: 'eighty' })).toBe('PORT must be an integer from 0 to 65535 (got "eighty")')
  })
})

describe('the built entry (node dist/src/main.js) in a folder with a .env', () => {
  let child: (ChildProcess & { exited: Promise<number | null>; output: () => string }) | null = null
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await child?.exited
    child = null
  })

  function start(env: Record<string, string> = {}) {
    if (!existsSync(MAIN)) throw new Error('dist/src/main.js is missing: build it first (npm run build)')
    // Only PATH from this process: vitest's NODE_ENV=test would otherwise win over the file's.
    const c = spawn(process.execPath, [MAIN.pathname], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    c.stdout.on('data', (d: Buffer) => (out += d))
    c.stderr.on('data', (d: Buffer) => (out += d))
    const exited = new Promise<number | null>((resolve) => c.on('exit', (code) => resolve(code)))
    child = Object.assign(c, { exited, output: () => out })
    return child
  }

  it('copied from .env.example, exits 1 naming what to fill in, without a stack trace', async () => {
    copyFileSync(EXAMPLE, join(dir, '.env'))
    const c = start()
    expect(await c.exited).toBe(1)
    const lines = c.output().trimEnd().split('\n')
    expect(lines[0]).toMatch(new RegExp(`^Read ${join(dir, '.env').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ variables set$`))
    expect(lines[1]).toBe('Configuration error: KIE_API_KEY, PUBLIC_BASE_URL, API_KEYS, CALLBACK_SECRET must be set when NODE_ENV=production.')
    expect(lines[2]).toBe('Fill in (in .env, or in the environment):')
    expect(c.output()).not.toMatch(/^\s+at /m)
    expect(existsSync(join(dir, 'data'))).toBe(false)
  })

  it('starts in sandbox mode on 127.0.0.1 with the environment winning over the file, and stops on SIGTERM', async () => {
    const port = await freePort()
    // LOG_LEVEL=loud would be refused: the environment's LOG_LEVEL must win.
    writeFileSync(join(dir, '.env'), `PORT=${port}\nLOG_LEVEL=loud\nSANDBOX_SIMULATOR_PORT=0\nDATABASE_PATH=./gw.db\n`)
    const c = start({ LOG_LEVEL: 'info' })
    const deadline = Date.now() + 10_000
    let health: Response | null = null
    while (!health?.ok) {
      if (c.exitCode !== null) throw new Error(`the gateway exited: ${c.output()}`)
      if (Date.now() > deadline) throw new Error(`no /healthz within 10 s: ${c.output()}`)
      await new Promise((r) => setTimeout(r, 50))
      health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null)
    }
    expect(c.output()).toContain(`Read ${join(dir, '.env')}: 3 variables set, LOG_LEVEL kept from the environment (it wins over the file)`)
    expect(c.output()).toContain(`Server listening at http://127.0.0.1:${port}`)
    expect(existsSync(join(dir, 'gw.db'))).toBe(true)
    c.kill('SIGTERM')
    expect(await c.exited).toBe(0)
  })
})

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}
