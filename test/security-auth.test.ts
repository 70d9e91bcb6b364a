// Issue 11, part 6: guessing client keys costs a minute per AUTH_FAILURES_MAX guesses per
// address, and TRUST_PROXY decides which address a request comes from.
import type { InjectOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { loadConfig, parseTrustProxy } from '../src/config.js'
import { createAuthFailures } from '../src/plugins/auth-failures.js'
import { auth, buildTestApp, KEY_A } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx | undefined

const WRONG = { authorization: 'Bearer wrong-key-0123456789abcdef' }
const list = (remoteAddress: string, headers: InjectOptions['headers'] = auth()) => t!.app.inject({ url: '/upscale', remoteAddress, headers })
async function guess(remoteAddress: string, times: number, headers: InjectOptions['headers'] = {}) {
  const statuses = new Set<number>()
  for (let i = 0; i < times; i++) statuses.add((await list(remoteAddress, { ...WRONG, ...headers })).statusCode)
  return [...statuses]
}
function expectLimited(res: Awaited<ReturnType<typeof list>>, retryAfter: number) {
  expect(res.statusCode).toBe(429)
  expect(res.headers['retry-after']).toBe(String(retryAfter))
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  const body = res.json()
  expect(Object.keys(body).sort()).toEqual(['code', 'error', 'message', 'statusCode'])
  expect(body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', code: 'GW_RATE_LIMITED' })
  expect(body.message).toMatch(/failed authentications from this address/)
}

describe('failed authentications per address', () => {
  it('after 20 wrong keys the address gets 429 until the minute has passed; other addresses do not', async () => {
    t = await buildTestApp()
    expect(await guess('10.0.0.1', 20)).toEqual([401])
    expectLimited(await list('10.0.0.1', WRONG), 60)
    // The address is blocked, whatever key it sends: a valid one too.
    expectLimited(await list('10.0.0.1'), 60)
    expect((await list('10.0.0.2')).statusCode).toBe(200)
    // Requests that need no key are not refused.
    expect((await t.app.inject({ url: '/healthz', remoteAddress: '10.0.0.1' })).statusCode).toBe(200)

    t.clock.advance(45_000)
    expectLimited(await list('10.0.0.1'), 15)
    t.clock.advance(15_000)
    expect((await list('10.0.0.1')).statusCode).toBe(200)
    // A fresh window: 20 more guesses, then blocked again.
    expect(await guess('10.0.0.1', 20)).toEqual([401])
    expectLimited(await list('10.0.0.1'), 60)
  })

  it('follows AUTH_FAILURES_MAX, counts malformed credentials, not missing ones', async () => {
    t = await buildTestApp({ authFailures: { max: 3 } })
    for (let i = 0; i < 10; i++) expect((await list('10.0.0.3', {})).statusCode).toBe(401)
    expect((await list('10.0.0.3')).statusCode).toBe(200)
    expect(await guess('10.0.0.3', 3, { authorization: 'Basic dXNlcjpwYXNz' })).toEqual([401])
    expectLimited(await list('10.0.0.3'), 60)
  })

  it('keeps bounded memory: expired windows are pruned, and at most maxAddresses are kept', () => {
    let now = 0
    const f = createAuthFailures({ max: 2, windowMs: 60_000, maxAddresses: 100 }, () => now)
    for (let i = 0; i < 1000; i++) f.fail(`10.1.${i >> 8}.${i & 255}`)
    expect(f.size).toBe(100)
    f.fail('10.9.9.9')
    f.fail('10.9.9.9')
    expect(f.blockedFor('10.9.9.9')).toBe(60)
    now = 60_000
    expect(f.blockedFor('10.9.9.9')).toBe(0)
    f.fail('10.9.9.8')
    expect(f.size).toBe(1)
  })
})

describe('TRUST_PROXY', () => {
  const whoami = (remoteAddress: string, xff?: string) =>
    t!.app.inject({ url: '/whoami', remoteAddress, headers: xff ? { 'x-forwarded-for': xff } : {} }).then((r) => r.json().ip)
  const build = async (trustProxy?: readonly string[]) => {
    t = await buildTestApp({
      ...(trustProxy ? { trustProxy } : {}),
      routes: (app) => app.get('/whoami', { config: { rateLimit: false } }, async (request) => ({ ip: request.ip }))
    })
    return t
  }

  it('by default X-Forwarded-For is ignored: everyone behind the proxy shares its address', async () => {
    await build()
    expect(await whoami('127.0.0.1', '203.0.113.7')).toBe('127.0.0.1')
    expect(await guess('127.0.0.1', 20, { 'x-forwarded-for': '203.0.113.7' })).toEqual([401])
    expectLimited(await list('127.0.0.1', { ...auth(), 'x-forwarded-for': '203.0.113.8' }), 60)
  })

  it('from a trusted proxy, the forwarded client is the address that is limited', async () => {
    await build(['127.0.0.1'])
    expect(await whoami('127.0.0.1', '203.0.113.7')).toBe('203.0.113.7')
    // Only the listed proxy is believed; anyone else's header is its own claim.
    expect(await whoami('198.51.100.1', '203.0.113.7')).toBe('198.51.100.1')
    expect(await guess('127.0.0.1', 20, { 'x-forwarded-for': '203.0.113.7' })).toEqual([401])
    expectLimited(await list('127.0.0.1', { ...auth(), 'x-forwarded-for': '203.0.113.7' }), 60)
    expect((await list('127.0.0.1', { ...auth(KEY_A), 'x-forwarded-for': '203.0.113.8' })).statusCode).toBe(200)
  })

  it('is parsed from the environment: true, false, addresses and CIDRs; anything else names the variable', () => {
    expect(loadConfig({}).trustProxy).toBe(false)
    expect(loadConfig({}).authFailuresMax).toBe(20)
    expect(loadConfig({ AUTH_FAILURES_MAX: '5' }).authFailuresMax).toBe(5)
    expect(parseTrustProxy('false')).toBe(false)
    expect(parseTrustProxy('true')).toBe(true)
    expect(loadConfig({ TRUST_PROXY: ' 10.0.0.1, 10.0.0.0/8 ,::1, fd00::/8, loopback ' }).trustProxy).toEqual(['10.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', 'loopback'])
    for (const bad of ['1', 'yes', '10.0.0.0/33', '::1/129', '10.0.0.1/8/8', 'proxy.example.com', '10.0.0.1,,bogus', ',']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(/^TRUST_PROXY must be true, false, or a comma-separated list/)
    }
    expect(() => loadConfig({ TRUST_PROXY: '2' })).toThrow(/a hop count is not supported/)
    for (const bad of ['0', 'many', '-1']) expect(() => loadConfig({ AUTH_FAILURES_MAX: bad })).toThrow(/^AUTH_FAILURES_MAX must be /)
  })
})
