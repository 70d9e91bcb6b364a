import { createServer } from 'node:http'
import { isIP, type AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { postWebhook } from '../src/webhooks/deliver.js'
import { isBlockedAddress, resolveSafe, UnsafeUrlError, type HostLookup, type SsrfPolicy } from '../src/webhooks/ssrf.js'
import { until } from './e2e-helper.js'
import { auth, buildTestApp, callbackQuery, closeServer, hex32, onCleanup, successCallback } from './helper.js'

// Issue 11: IPv6 forms of internal IPv4 addresses got through, because the URL parser writes
// them in hex and the guard only knew the dotted forms. Every address below is taken exactly as
// `new URL()` leaves it, as the route and the sender see it. No test here sends anything off
// loopback: every attack is refused before a connection is made (asserted first where a
// regression could otherwise connect), and host names are answered by an injected resolver.

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
type Ctx = Awaited<ReturnType<typeof buildTestApp>>
// Apps and receivers are closed after each test by helper.ts.
let t: Ctx | null = null

/** [what, URL as a client writes it, the hostname `new URL()` makes of it] */
const attacks: Array<[string, string, string]> = [
  ['NAT64 of the cloud metadata address', 'http://[64:ff9b::169.254.169.254]/latest/meta-data/', '[64:ff9b::a9fe:a9fe]'],
  ['NAT64 of a private address', 'http://[64:ff9b::10.0.0.1]/x', '[64:ff9b::a00:1]'],
  ['NAT64 of a CGNAT address', 'http://[64:ff9b::100.64.0.1]/x', '[64:ff9b::6440:1]'],
  ['local-use NAT64 of loopback', 'http://[64:ff9b:1::127.0.0.1]/x', '[64:ff9b:1::7f00:1]'],
  ['6to4 of loopback', 'http://[2002:7f00:1::]/x', '[2002:7f00:1::]'],
  ['6to4 of the metadata address', 'http://[2002:a9fe:a9fe::1]/x', '[2002:a9fe:a9fe::1]'],
  ['IPv4-compatible loopback', 'http://[::127.0.0.1]/x', '[::7f00:1]'],
  ['IPv4-compatible private address', 'http://[::192.168.1.1]/x', '[::c0a8:101]'],
  ['IPv4-translated loopback', 'http://[::ffff:0:127.0.0.1]/x', '[::ffff:0:7f00:1]'],
  ['IPv4-mapped metadata address', 'http://[::ffff:169.254.169.254]/x', '[::ffff:a9fe:a9fe]'],
  ['IPv4-mapped loopback in hex', 'http://[::ffff:7f00:1]/x', '[::ffff:7f00:1]'],
  // Teredo: 2001:0:<server IPv4>:<flags>:<port>:<client IPv4 XOR ffff:ffff>
  ['Teredo with a loopback client', 'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x', '[2001:0:4136:e378:8000:63bf:80ff:fffe]'],
  ['Teredo with a private server', 'http://[2001:0:a00:1::f7f7:f7f7]/x', '[2001:0:a00:1::f7f7:f7f7]'],
  ['an IPv6 site-local address', 'http://[fec0::1]/x', '[fec0::1]'],
  ['the IPv6 discard prefix', 'http://[100::1]/x', '[100::1]'],
  ['IPv6 documentation space', 'http://[2001:db8::1]/x', '[2001:db8::1]'],
  ['IPv4 loopback written in hex', 'http://0x7f.0.0.1/x', '127.0.0.1'],
  ['the metadata address as one number', 'http://2852039166/x', '169.254.169.254'],
  ['broadcast', 'http://255.255.255.255/x', '255.255.255.255']
]
const bare = (hostname: string) => hostname.replace(/^\[|\]$/g, '')

/** A resolver that answers for the names it is given and for nothing else. */
const resolver = (names: Record<string, string | string[]>): HostLookup => async (host) => {
  const answer = names[host]
  if (answer === undefined) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
  return [answer].flat().map((address) => ({ address, family: isIP(address) }))
}
const policy = (extra: Partial<SsrfPolicy> = {}): SsrfPolicy => ({ allowHosts: new Set(), allowLoopback: false, ...extra })

describe('IPv6 forms of internal addresses, as new URL() normalises them', () => {
  it.each(attacks)('%s: the host the guard sees is the hex form', (_what, raw, hostname) => {
    expect(new URL(raw).hostname).toBe(hostname)
  })

  it.each(attacks)('refuses %s at submit time with 400, storing nothing', async (_what, raw) => {
    t = await buildTestApp({ webhooks: { secret: SECRET } })
    const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0, callbackUrl: raw } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'GW_VALIDATION', message: expect.stringMatching(/^body\.callbackUrl: .*only public unicast addresses are allowed/) })
    expect((t.db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n).toBe(0)
    expect(t.kie.upscaleCalls).toHaveLength(0)
  })

  it.each(attacks)('refuses a host name resolving to %s at submit time', async (_what, raw) => {
    t = await buildTestApp({ webhooks: { secret: SECRET } })
    t.app.services.webhooks.policy.lookup = resolver({ 'hooks.attacker.test': bare(new URL(raw).hostname) })
    const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0, callbackUrl: 'https://hooks.attacker.test/x' } })
    expect(res.statusCode).toBe(400)
    expect(res.json().message).toMatch(/^body\.callbackUrl: host hooks\.attacker\.test resolves to /)
    expect(t.kie.upscaleCalls).toHaveLength(0)
  })

  it.each(attacks)('refuses a host name resolving to %s at send time, connecting nowhere', async (_what, raw) => {
    const p = policy({ lookup: resolver({ 'hooks.attacker.test': bare(new URL(raw).hostname) }) })
    const url = 'http://hooks.attacker.test/x'
    // postWebhook checks with resolveSafe before it connects; asserting it first means a
    // broken guard fails here instead of sending a request to the address.
    await expect(resolveSafe(new URL(url), p)).rejects.toThrow(UnsafeUrlError)
    const result = await postWebhook(url, {}, '{}', p, 1000)
    expect(result).toMatchObject({ statusCode: null, error: expect.stringMatching(/^refused: host hooks\.attacker\.test resolves to /) })
  })

  it('refuses a name with one internal address among public ones', async () => {
    const p = policy({ lookup: resolver({ 'mixed.attacker.test': ['93.184.216.34', '64:ff9b::a9fe:a9fe'] }) })
    await expect(resolveSafe(new URL('https://mixed.attacker.test/x'), p)).rejects.toThrow(/64:ff9b::a9fe:a9fe, which carries 169\.254\.169\.254 \(linkLocal\)/)
  })

  it('checks again at send time: a name public at submit and internal at send (DNS rebinding) is refused', async () => {
    t = await buildTestApp({ clock: systemClock, workers: true, webhooks: { secret: SECRET, scheduleMs: [20] } })
    let answer = '93.184.216.34'
    t.app.services.webhooks.policy.lookup = async () => [{ address: answer, family: isIP(answer) }]
    const url = 'http://rebind.attacker.test/x'
    const res = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0, callbackUrl: url } })
    expect(res.statusCode).toBe(202)
    const task = res.json() as { id: string; kieTaskId: string }
    answer = '64:ff9b::a9fe:a9fe'
    // The sender checks with resolveSafe before it connects: proven refused before anything is sent.
    await expect(resolveSafe(new URL(url), t.app.services.webhooks.policy)).rejects.toThrow(UnsafeUrlError)
    await t.app.inject({ method: 'POST', url: `/callbacks/mj?${callbackQuery(task.id)}`, payload: successCallback(task.kieTaskId) })
    await until('dead-lettered', () => t!.repo.webhookDeliveries(task.id)[0]?.state === 'dead')
    for (const a of t.repo.webhookAttempts(task.id)) {
      expect(a).toMatchObject({ status_code: null, error: expect.stringMatching(/^refused: .*carries 169\.254\.169\.254 \(linkLocal\)/) })
    }
  })
})

describe('the address classifier', () => {
  it('allows public unicast addresses, also when carried in IPv6', () => {
    for (const a of [
      '93.184.216.34', '8.8.8.8', '1.1.1.1', '2606:4700::1111', '2606:4700:4700::1111', '2a00:1450:4001:82a::200e',
      '::ffff:5db8:d822', // IPv4-mapped 93.184.216.34
      '64:ff9b::5db8:d822', // NAT64 of it: every IPv4-only host looks like this behind DNS64
      '2002:5db8:d822::1', // 6to4 of it
      '2001:0:4136:e378:8000:63bf:a247:27cb' // Teredo: public server 65.54.227.120, public client 93.184.216.52
    ]) expect(isBlockedAddress(a, { allowLoopback: false }), a).toBe(false)
  })

  it('refuses every address outside the unicast range', () => {
    for (const a of [
      '0.0.0.0', '0.1.2.3', '10.0.0.1', '100.64.0.1', '127.0.0.1', '127.255.255.254', '169.254.169.254', '172.16.0.1', '172.31.255.255',
      '192.0.0.8', '192.0.2.1', '192.88.99.1', '192.168.0.1', '198.18.0.1', '198.51.100.1', '203.0.113.1', '224.0.0.1', '240.0.0.1', '255.255.255.255',
      '::', '::1', 'fe80::1', 'fc00::1', 'fd00:ec2::254', 'fd12::1', 'ff02::1', 'fec0::1', '100::1', '2001:db8::1', '2001:2::1', '5f00::1', '3fff::1',
      '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::a00:1', '64:ff9b:1::7f00:1', '2002:7f00:1::', '2002:c0a8:101::1', '::7f00:1', '::a00:1', '::ffff:0:7f00:1',
      '::ffff:7f00:1', '::ffff:a00:1', '::ffff:0:0', '2001:0:4136:e378:8000:63bf:80ff:fffe', '2001:0:a00:1::f7f7:f7f7'
    ]) expect(isBlockedAddress(a, { allowLoopback: false }), a).toBe(true)
  })

  it('refuses what is not an IP address literal', () => {
    for (const a of ['', 'localhost', '0x7f.1', '2130706433', 'example.com']) expect(isBlockedAddress(a, { allowLoopback: false }), a).toBe(true)
  })

  it('allowLoopback (sandbox mode) lets loopback on this host through, nothing else', () => {
    for (const a of ['127.0.0.1', '127.5.5.5', '::1', '::ffff:7f00:1']) expect(isBlockedAddress(a, { allowLoopback: true }), a).toBe(false)
    // Loopback carried to a translator or relay is that machine's, not ours; 0.0.0.0 reaches
    // local services on Linux, so it stays refused too.
    for (const a of ['64:ff9b::7f00:1', '64:ff9b:1::7f00:1', '2002:7f00:1::', '::7f00:1', '::ffff:0:7f00:1', '0.0.0.0', '::', '10.0.0.1', 'fd00::1']) {
      expect(isBlockedAddress(a, { allowLoopback: true }), a).toBe(true)
    }
  })
})

describe('WEBHOOK_ALLOW_HOSTS, the exception list', () => {
  it('lets an allowed name resolve to an internal address, and only that name', async () => {
    const lookup = resolver({ 'hooks.internal.test': '10.0.0.5', 'other.internal.test': '10.0.0.5' })
    const p = policy({ allowHosts: new Set(['hooks.internal.test']), lookup })
    expect(await resolveSafe(new URL('https://hooks.internal.test/x'), p)).toEqual({ address: '10.0.0.5', family: 4 })
    await expect(resolveSafe(new URL('https://other.internal.test/x'), p)).rejects.toThrow(UnsafeUrlError)
  })

  it('allows an address however it is written', async () => {
    const p = policy({ allowHosts: new Set(['64:ff9b::169.254.169.254', '::ffff:10.0.0.1']) })
    expect(await resolveSafe(new URL('http://[64:ff9b::169.254.169.254]/x'), p)).toEqual({ address: '64:ff9b::a9fe:a9fe', family: 6 })
    expect(await resolveSafe(new URL('http://[::ffff:10.0.0.1]/x'), p)).toEqual({ address: '::ffff:a00:1', family: 6 })
    await expect(resolveSafe(new URL('http://[64:ff9b::a9fe:a9ff]/x'), p)).rejects.toThrow(UnsafeUrlError)
  })

  it('lets a name resolving to an allowed address through', async () => {
    const p = policy({ allowHosts: new Set(['10.0.0.5']), lookup: resolver({ 'a.internal.test': '10.0.0.5', 'b.internal.test': ['10.0.0.5', '10.0.0.6'] }) })
    expect(await resolveSafe(new URL('https://a.internal.test/x'), p)).toEqual({ address: '10.0.0.5', family: 4 })
    await expect(resolveSafe(new URL('https://b.internal.test/x'), p)).rejects.toThrow(/10\.0\.0\.6, which is private/)
  })

  it('is honoured at submit time', async () => {
    t = await buildTestApp({ webhooks: { secret: SECRET, allowHosts: ['hooks.internal.test'] } })
    t.app.services.webhooks.policy.lookup = resolver({ 'hooks.internal.test': '64:ff9b::a00:5' })
    const ok = await t.app.inject({ method: 'POST', url: '/upscale', headers: auth(), payload: { taskId: hex32(), imageIndex: 0, callbackUrl: 'http://hooks.internal.test/x' } })
    expect(ok.statusCode).toBe(202)
  })

  it('connects to the address that was checked, not to a second lookup of the name', async (ctx) => {
    // The receiver listens on 127.0.0.2 only; the name is "localhost", which the system
    // resolves to 127.0.0.1 or ::1. The request arrives only if the connection is pinned.
    let reached: string | undefined
    const receiver = createServer((req, res) => {
      reached = req.socket.localAddress
      res.end('ok')
    })
    const listening = await new Promise<boolean>((resolve) => {
      receiver.once('error', () => resolve(false))
      receiver.listen(0, '127.0.0.2', () => resolve(true))
    })
    if (!listening) {
      ctx.skip() // 127.0.0.2 is not a loopback address on this system (macOS)
      return
    }
    onCleanup(() => closeServer(receiver))
    const port = (receiver.address() as AddressInfo).port
    const p = policy({ allowHosts: new Set(['localhost']), lookup: resolver({ localhost: '127.0.0.2' }) })
    const result = await postWebhook(`http://localhost:${port}/x`, {}, '{}', p, 2000)
    expect(result).toMatchObject({ statusCode: 200, error: null })
    expect(reached).toBe('127.0.0.2')
  })
})
