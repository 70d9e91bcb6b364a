import pino, { type Logger } from 'pino'
import type { FastifyRequest } from 'fastify'

// Secrets that may sit in what is logged: keys, signatures and the callback token.
const REDACT = [
  'req.headers.authorization',
  'req.headers["x-webhook-signature"]',
  'headers.authorization',
  'apiKey',
  'kieApiKey',
  'callbackSecret',
  'hmacKey'
]

/** Drops the per-task callback token from a logged URL. */
export const redactUrl = (url: string) => url.replace(/([?&]token=)[^&]*/g, '$1[redacted]')

/** JSON lines; pretty only when a person is watching a terminal. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const pretty = !destination && process.stdout.isTTY
  return pino({
    level,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
    redact: { paths: REDACT, censor: '[redacted]' },
    // Any line's url (the sandbox simulator logs each callback URL it calls) loses its token.
    serializers: {
      url: (url: unknown) => (typeof url === 'string' ? redactUrl(url) : url),
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.ip
      })
    }
    // Asynchronous writes: a log line must not cost a blocking write per request.
    // pino flushes what is buffered when the process exits.
  }, destination ?? (pretty ? undefined : pino.destination({ sync: false })))
}
