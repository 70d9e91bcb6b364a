// Issue 11, part 5: every answer the server writes, even to bytes that are not HTTP, has the
// common error shape. Raw bytes over node:net to the real listener on 127.0.0.1.
import { connect, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { clientErrorHandler, parserErrorResponse } from '../src/plugins/client-errors.js'
import { SECURITY_HEADERS } from '../src/plugins/http-conventions.js'
import { KEY_A, buildTestApp } from './helper.js'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
let t: Ctx
let port: number
const sockets = new Set<Socket>()

beforeAll(async () => {
  t = await buildTestApp()
  await t.app.listen({ host: '127.0.0.1', port: 0 })
  port = (t.app.server.address() as AddressInfo).port
})
afterAll(() => {
  // The app itself is closed after the file by helper.ts, after this.
  for (const s of sockets) s.destroy()
})

interface Raw { status: number; headers: Record<string, string>; body: string }

/** Sends the bytes and reads until the server closes (every answer here closes the connection). */
function raw(bytes: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    sockets.add(socket)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 5 s')), 5000)
    socket.on('data', (c) => chunks.push(c))
    // The server may reset after answering (it does not read what is left of a refused request).
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      sockets.delete(socket)
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return reject(new Error(`no complete answer: ${JSON.stringify(text.slice(0, 200))}`))
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) })
    })
    socket.write(bytes, 'latin1')
  })
}

function expectShape(res: Raw, status: number, code: string) {
  expect(res.status, res.body).toBe(status)
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
  expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)))
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(res.headers[name], name).toBe(value)
  const body = JSON.parse(res.body) as Record<string, unknown>
  expect(Object.keys(body).sort()).toEqual(['code', 'error', 'message', 'statusCode'])
  expect(body).toMatchObject({ statusCode: status, code })
  expect(typeof body.error).toBe('string')
  expect(body.message).toEqual(expect.any(String))
  return body
}

describe("Node's HTTP parser errors, in the common shape", () => {
  it.each([
    ['a garbage request line', 'HELLO THERE\r\n\r\n'],
    ['Content-Length together with Transfer-Encoding', 'POST /upscale HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    // Authenticated, so that the body is read at all (without a key the answer is a 401 first).
    ['a bad chunk', `POST /upscale HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`],
    ['a NUL in the URL', 'GET /upscale/a\x00b HTTP/1.1\r\nHost: gw\r\n\r\n'],
    ['an HTTP/2 preface sent to HTTP/1.1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']
  ])('400 GW_BAD_REQUEST for %s', async (_what, bytes) => {
    const res = await raw(bytes)
    const body = expectShape(res, 400, 'GW_BAD_REQUEST')
    expect(body.error).toBe('Bad Request')
    expect(body.message).toMatch(/^Malformed HTTP request/)
    expect(res.headers.connection).toBe('close')
  })

  it.each([
    ['a 100 KB URL', `GET /${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: gw\r\n\r\n`],
    ['100 KB of headers', `GET /healthz HTTP/1.1\r\nHost: gw\r\n${Array.from({ length: 100 }, (_, i) => `x-h${i}: ${'a'.repeat(1000)}\r\n`).join('')}\r\n`]
  ])('431 GW_HEADERS_TOO_LARGE for %s', async (_what, bytes) => {
    const body = expectShape(await raw(bytes), 431, 'GW_HEADERS_TOO_LARGE')
    expect(body.error).toBe('Request Header Fields Too Large')
  })
})

describe('a request without Host', () => {
  it.each(['/healthz', '/upscale', '/openapi.json', '/no-such-route'])('HTTP/1.1 to %s: 400 GW_BAD_REQUEST, not an empty 400', async (path) => {
    const res = await raw(`GET ${path} HTTP/1.1\r\nAuthorization: Bearer nope-nope-nope-nope\r\n\r\n`)
    const body = expectShape(res, 400, 'GW_BAD_REQUEST')
    expect(body.message).toBe('An HTTP/1.1 request needs a Host header')
    expect(res.headers['x-request-id']).toBeTruthy()
    expect(res.headers.connection).toBe('close')
  })

  it('HTTP/1.0 needs none, and a well-formed request is still served', async () => {
    const old = await raw('GET /healthz HTTP/1.0\r\n\r\n')
    expect(old.status).toBe(200)
    const res = await raw('GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' })
  })
})

describe('clientErrorHandler', () => {
  const fakeSocket = (over: Record<string, unknown> = {}) => ({ destroyed: false, writable: true, _httpMessage: null, end: vi.fn(), destroy: vi.fn(), ...over })
  const call = (err: Partial<NodeJS.ErrnoException>, socket: ReturnType<typeof fakeSocket>) =>
    clientErrorHandler.call(t.app as never, Object.assign(new Error('x'), err), socket as never)

  it('maps the request timeout to 408 GW_REQUEST_TIMEOUT', () => {
    expect(parserErrorResponse(Object.assign(new Error('t'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }))).toMatchObject({
      statusCode: 408, error: 'Request Timeout', code: 'GW_REQUEST_TIMEOUT'
    })
    const socket = fakeSocket()
    call({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }, socket)
    expect(String(socket.end.mock.calls[0]?.[0])).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"code":"GW_REQUEST_TIMEOUT"/)
    expect(socket.destroy).toHaveBeenCalled()
  })

  it('never writes into a response already under way, nor to a reset or gone socket', () => {
    for (const [err, socket] of [
      [{ code: 'HPE_INVALID_CHUNK_SIZE' }, fakeSocket({ _httpMessage: { headersSent: true } })],
      [{ code: 'HPE_INVALID_METHOD' }, fakeSocket({ writable: false })],
      [{ code: 'ECONNRESET' }, fakeSocket()],
      [{ code: 'HPE_INVALID_METHOD' }, fakeSocket({ destroyed: true })]
    ] as const) {
      call(err, socket)
      expect(socket.end).not.toHaveBeenCalled()
    }
  })
})
