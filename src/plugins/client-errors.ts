import { maxHeaderSize, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { errorBody, type ErrorResponse } from '../errors.js'
import { SECURITY_HEADERS } from './http-conventions.js'

/** What a parser error is answered with: the status, our code and a message. */
export function parserErrorResponse(err: NodeJS.ErrnoException & { reason?: string }): ErrorResponse {
  const answer = errorBody
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return answer(431, 'GW_HEADERS_TOO_LARGE', `The request line and headers are larger than ${maxHeaderSize} bytes`)
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return answer(413, 'GW_PAYLOAD_TOO_LARGE', 'The chunk extensions are too large')
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return answer(408, 'GW_REQUEST_TIMEOUT', 'The request was not received in time')
    default: {
      // llhttp's reasons are fixed phrases ("Invalid method encountered"); kept short and printable anyway.
      const reason = (err.reason ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 100)
      return answer(400, 'GW_BAD_REQUEST', reason ? `Malformed HTTP request: ${reason}` : 'Malformed HTTP request')
    }
  }
}

/** A complete HTTP/1.1 response, written straight to the socket: there is no request to reply through. */
export function rawErrorResponse(body: ErrorResponse): string {
  const json = JSON.stringify(body)
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(json)),
    connection: 'close',
    ...SECURITY_HEADERS
  }
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`)
  return `HTTP/1.1 ${body.statusCode} ${body.error}\r\n${lines.join('')}\r\n${json}`
}

/**
 * Fastify's clientErrorHandler: Node's HTTP parser refused the bytes (garbage request line,
 * Content-Length with Transfer-Encoding, a bad chunk, headers over the limit, a timeout).
 * Fastify's default answers these without `code`; this answers them in the common shape.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) {
  // A reset peer, or a socket already gone: nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const body = parserErrorResponse(err)
  this.log.info({ statusCode: body.statusCode, code: body.code, parserError: err.code }, 'client error')
  // As Node does: never write into a response whose headers already went out (it would corrupt it).
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (socket.writable && !inFlight?.headersSent) socket.end(rawErrorResponse(body))
  socket.destroy(err)
}

/**
 * HTTP/1.1 requires a Host header (RFC 9112 §3.2). Node's own check answers an empty 400, so
 * it is off (http.requireHostHeader: false) and this hook answers in the common shape instead.
 */
export default fp(
  async function requireHost(app: FastifyInstance) {
    app.addHook('onRequest', (request, reply, done) => {
      const { httpVersionMajor, httpVersionMinor } = request.raw
      if (request.headers.host !== undefined || httpVersionMajor !== 1 || httpVersionMinor !== 1) return done()
      request.errorCode = 'GW_BAD_REQUEST'
      void reply.code(400).header('connection', 'close').send(errorBody(400, 'GW_BAD_REQUEST', 'An HTTP/1.1 request needs a Host header'))
    })
  },
  { name: 'require-host', fastify: '5.x', dependencies: ['http-conventions'] }
)
