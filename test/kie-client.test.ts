import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKieClient } from '../src/kie/client.js'

// A stand-in kie.ai whose answer is chosen by the parent task id the client sends.
type Handler = (req: IncomingMessage, res: ServerResponse) => void
const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
}
const handlers: Record<string, Handler> = {
  ok: json(200, { code: 200, msg: 'success', data: { taskId: 'abc123' } }),
  credits: json(200, { code: 402, msg: 'Credits insufficient', data: null }),
  invalid: json(200, { code: 422, msg: 'record does not exist', data: null }),
  auth: json(401, { code: 401, msg: 'You do not have access permissions', data: null }),
  'auth-html': (_req, res) => res.writeHead(401, { 'content-type': 'text/html' }).end('<h1>401</h1>'),
  'http-429': json(429, { code: 429, msg: 'Too many requests' }, { 'retry-after': '7' }),
  'body-429': json(200, { code: 429, msg: 'rate limited', data: null }),
  maintenance: json(200, { code: 455, msg: 'Service unavailable', data: null }),
  'body-500': json(200, { code: 500, msg: 'Server error', data: null }),
  'http-502-html': (_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad gateway</html>'),
  'ok-html': (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hi</html>'),
  'ok-no-data': json(200, { code: 200, msg: 'success', data: null }),
  disabled: json(200, { code: 505, msg: 'Feature disabled', data: null }),
  'gen-failed': json(200, { code: 501, msg: 'Generation failed', data: null }),
  stall: () => {},
  hangup: (req) => req.socket.destroy()
}

let server: Server
let baseUrl: string
beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = ''
    req.on('data', (c) => (raw += c))
    req.on('end', () => {
      const key = (JSON.parse(raw || '{}') as { taskId?: string }).taskId ?? 'ok'
      ;(handlers[key] ?? handlers.ok!)(req, res)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

const upscale = (taskId: string, url = baseUrl) =>
  createKieClient({ baseUrl: url, apiKey: 'k', timeoutMs: 300 }).generateUpscale({ taskId, imageIndex: 0, callBackUrl: 'http://cb' })

describe('kie.ai client: reading answers per the documented envelope', () => {
  it('returns the new task id on success', async () => {
    expect(await upscale('ok')).toEqual({ ok: true, data: { taskId: 'abc123' } })
  })

  it.each([
    ['credits', 402, 'Credits insufficient'],
    ['invalid', 422, 'record does not exist'],
    ['auth', 401, 'You do not have access permissions'],
    ['auth-html', 401, 'HTTP 401'],
    ['disabled', 505, 'Feature disabled'],
    ['gen-failed', 501, 'Generation failed']
  ])('treats %s as a definitive refusal with code %i', async (key, code, msg) => {
    expect(await upscale(key)).toMatchObject({ ok: false, kind: 'rejected', code, msg })
  })

  it.each([
    ['http-429', 'rate_limited', false, 7000],
    ['body-429', 'rate_limited', false, null],
    ['maintenance', 'maintenance', false, null],
    ['body-500', 'server_error', false, null],
    ['http-502-html', 'bad_response', true, null],
    ['ok-html', 'bad_response', true, null],
    ['ok-no-data', 'bad_response', true, null],
    ['stall', 'timeout', true, null],
    ['hangup', 'network', true, null]
  ])('treats %s as transient (%s), maybeDelivered=%s', async (key, reason, maybeDelivered, retryAfterMs) => {
    expect(await upscale(key)).toMatchObject({ ok: false, kind: 'transient', reason, maybeDelivered, retryAfterMs })
  })

  it('knows a refused connection never reached kie.ai', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    expect(await upscale('ok', `http://127.0.0.1:${port}`)).toMatchObject({ ok: false, kind: 'transient', reason: 'network', maybeDelivered: false })
  })
})
