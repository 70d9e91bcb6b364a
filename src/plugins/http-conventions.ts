import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errorBody } from '../errors.js'
import { redactUrl } from '../logger.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Task ids that the request touched, for its log line. */
    logRefs: { taskId?: string; kieTaskId?: string | null }
    /** The client key's name (or fingerprint), for its log line; never the key. */
    clientName?: string
    /** The error code it was answered with, for its log line. */
    errorCode?: string
  }
}

const REQUEST_ID = /^[\w.:@/-]{1,128}$/

/** X-Request-Id from the caller when it is sane, else a fresh one. */
export function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

// A small fixed set for an API that serves JSON to programs.
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer'
}

const SECURITY_HEADER_LIST = Object.entries(SECURITY_HEADERS)

/** Request ids, one log line per request, security headers, and closing keep-alives at shutdown. */
export default fp(
  async function httpConventions(app: FastifyInstance) {
    let closing = false
    app.decorateRequest('logRefs', null as unknown as FastifyRequest['logRefs'])
    // Callback-style hooks: they run on every request, and an async hook costs a promise each.
    app.addHook('onRequest', (request, reply, done) => {
      request.logRefs = {}
      // Fastify's own 503 while closing has another shape; this one has ours.
      if (!closing) return done()
      request.errorCode = 'GW_SHUTTING_DOWN'
      void reply.code(503).header('retry-after', '5').send(errorBody(503, 'GW_SHUTTING_DOWN', 'The gateway is shutting down; retry shortly'))
    })
    app.addHook('preClose', async () => {
      closing = true
    })
    app.addHook('onSend', (request, reply, payload, done) => {
      reply.header('x-request-id', request.id)
      for (const [name, value] of SECURITY_HEADER_LIST) if (!reply.hasHeader(name)) reply.header(name, value)
      // During shutdown responses close their connection, so keep-alive clients cannot hold it open.
      if (closing) reply.header('connection', 'close')
      done(null, payload)
    })
    app.addHook('onResponse', (request, reply, done) => {
      const line = {
        method: request.method,
        route: request.routeOptions.url ?? null,
        url: redactUrl(request.url),
        statusCode: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        client: request.clientName,
        ...request.logRefs,
        ...(request.errorCode ? { code: request.errorCode } : {})
      }
      if (reply.statusCode >= 500) request.log.warn(line, 'request')
      else request.log.info(line, 'request')
      // A response that ends after close() began leaves an idle keep-alive connection that
      // close() already looked past: close it now, or shutdown waits out the keep-alive timeout.
      if (closing) setImmediate(() => app.server.closeIdleConnections())
      done()
    })
  },
  { name: 'http-conventions', fastify: '5.x', dependencies: [] }
)
