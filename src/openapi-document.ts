// The served OpenAPI document, made exact: @fastify/swagger builds it from the routes' own
// schemas; this adds what a route schema cannot say well, in one place, for every operation:
// the statuses any request can be answered with (a refused key, the rate limit, a body too
// large, shutdown, ...), the response headers, the content types that are not JSON, and the
// webhook events the gateway sends (OpenAPI 3.1 `webhooks`).
import { plainJsonSchema } from './json-schema.js'

type Json = Record<string, unknown>
interface Operation extends Json {
  operationId?: string
  security?: Array<Record<string, unknown>>
  parameters?: Array<{ in: string; name: string }>
  requestBody?: unknown
  responses: Record<string, Json>
}

const ref = (to: string) => ({ $ref: to })
const header = (name: string) => ref(`#/components/headers/${name}`)
const errorContent = { 'application/json': { schema: ref('#/components/schemas/ErrorResponse') } }

/** Response headers, referenced by the operations. */
export const HEADERS = {
  XRequestId: { description: 'The request id (the caller\'s X-Request-Id when it is sane, else a fresh one); in every log line of the request', schema: { type: 'string' } },
  XRateLimitLimit: { description: 'Requests allowed per window for this API key', schema: { type: 'integer' } },
  XRateLimitRemaining: { description: 'Requests left in the current window', schema: { type: 'integer' } },
  XRateLimitReset: { description: 'Seconds until the window resets', schema: { type: 'integer' } },
  RetryAfter: { description: 'Seconds to wait before trying again', schema: { type: 'integer' } },
  Location: { description: 'Where the task can be read', schema: { type: 'string' } },
  IdempotentReplayed: { description: '"true" when this is the saved answer to an earlier request with the same Idempotency-Key', schema: { type: 'string', enum: ['true'] } },
  ETag: { description: 'The SHA-256 of the file, quoted; send it back as If-None-Match', schema: { type: 'string' } },
  CacheControl: { description: 'private, max-age=31536000, immutable: a stored file never changes', schema: { type: 'string' } }
}

/** What each error status means here, with the codes it carries. */
const STATUS = {
  400: 'Invalid request: GW_VALIDATION (the message names the field), GW_INVALID_JSON, GW_BAD_URL, or GW_BAD_REQUEST (a malformed HTTP request)',
  401: 'GW_UNAUTHORIZED: the Authorization header is missing or holds no known API key (or admin key, or METRICS_TOKEN); GW_CALLBACK_UNAUTHORIZED: a callback with a bad token or kie.ai signature',
  402: 'GW_UPSTREAM_INSUFFICIENT_CREDITS: kie.ai has no credits left for this account',
  404: 'GW_NOT_FOUND: no such task for this API key',
  408: 'GW_REQUEST_TIMEOUT: the request was not received in time',
  409: 'A conflict with the task\'s state: GW_NOTHING_TO_RETRY (no dead-lettered webhook delivery), GW_RESULT_PENDING (the result is still being archived; see Retry-After), GW_TASK_NOT_OPEN (admin reconcile: the task is not submitted, or kie.ai\'s id for it is not known)',
  410: 'GW_RESULT_UNAVAILABLE: the result was not archived, or was removed',
  413: 'GW_PAYLOAD_TOO_LARGE: the body is larger than this route accepts',
  414: 'GW_URI_TOO_LONG: a path parameter is too long',
  415: 'GW_UNSUPPORTED_MEDIA_TYPE: the body must be application/json',
  422: 'kie.ai refused the task (GW_UPSTREAM_REJECTED), the Idempotency-Key was used with another body (GW_IDEMPOTENCY_MISMATCH), or parentId names no grid of yours (GW_PARENT_INVALID)',
  429: 'GW_RATE_LIMITED: too many requests for this API key, or too many wrong keys from this address; see Retry-After',
  431: 'GW_HEADERS_TOO_LARGE: the request line and headers are too large',
  500: 'GW_INTERNAL: an unexpected error (it is logged with the request id)',
  502: 'kie.ai answered with an error: GW_UPSTREAM_ERROR, GW_UPSTREAM_AUTH (the gateway\'s kie.ai key), GW_UPSTREAM_GENERATION_FAILED',
  503: 'GW_SHUTTING_DOWN (retry shortly; see Retry-After), GW_NOT_READY (readiness), GW_UPSTREAM_UNAVAILABLE or GW_UPSTREAM_FEATURE_DISABLED (kie.ai)'
} as Record<number, string>

/** What an admin operation's 429 means: no per-key rate limit applies, only the wrong-key limit. */
const ADMIN_429 = 'GW_RATE_LIMITED: too many wrong keys from this address; see Retry-After'

/** The statuses an operation can be answered with whatever it does, by what it takes. */
function commonStatuses(op: Operation, client: boolean, admin: boolean): number[] {
  const statuses = [400, 408, 431, 500, 503]
  // A wrong admin key counts toward the same per-address limit as a wrong client key.
  if (client || admin) statuses.push(401, 429)
  if (op.parameters?.some((p) => p.in === 'path')) statuses.push(404, 414)
  if (op.requestBody !== undefined) statuses.push(413, 415)
  return statuses
}

const isClientOperation = (op: Operation) => op.security === undefined || op.security.some((s) => 'bearer' in s)
const isAdminOperation = (op: Operation) => op.security?.some((s) => 'admin' in s) ?? false
/** Operations that serve an archived image (or its thumbnail): cached, with an ETag. */
const isImage = (path: string) => path.endsWith('/result') || /\/files\/\{index\}(\/thumbnail)?$/.test(path)

function shapeOperation(path: string, method: string, op: Operation) {
  const client = isClientOperation(op)
  const admin = isAdminOperation(op)
  const responses = op.responses
  for (const status of commonStatuses(op, client, admin)) {
    // A route's own 404 or 503 (a missing task, not ready) keeps its body; every one gets the headers below.
    responses[status] ??= { description: '', content: errorContent }
  }
  for (const [status, response] of Object.entries(responses)) {
    const code = Number(status)
    if (code >= 400) {
      response.description = (admin && code === 429 ? ADMIN_429 : STATUS[code]) ?? response.description
      response.content = errorContent
    }
    const headers: Record<string, unknown> = { 'X-Request-Id': header('XRequestId') }
    if (client && code !== 401) {
      headers['X-RateLimit-Limit'] = header('XRateLimitLimit')
      headers['X-RateLimit-Remaining'] = header('XRateLimitRemaining')
      headers['X-RateLimit-Reset'] = header('XRateLimitReset')
    }
    if (code === 429 || code === 503 || (code === 409 && isImage(path))) headers['Retry-After'] = header('RetryAfter')
    if (method === 'post' && op.requestBody !== undefined && code < 500) {
      if (code === 202) headers.Location = header('Location')
      headers['Idempotent-Replayed'] = header('IdempotentReplayed')
    }
    if (isImage(path) && (code === 200 || code === 304)) {
      headers.ETag = header('ETag')
      headers['Cache-Control'] = header('CacheControl')
    }
    response.headers = { ...(response.headers as Json | undefined), ...headers }
  }
  // Content that is not JSON.
  if (isImage(path) && responses[200]) {
    const image = (type: string) => ({ schema: { type: 'string', contentMediaType: type } })
    // A thumbnail is always WebP; an archived file is what kie.ai made.
    const types = path.endsWith('/thumbnail') ? ['image/webp'] : ['image/png', 'image/jpeg', 'image/webp', 'image/gif']
    responses[200].content = Object.fromEntries(types.map((t) => [t, image(t)]))
  }
  if (isImage(path) && responses[304]) delete responses[304].content
  if (path === '/metrics' && responses[200]) {
    const json = (responses[200].content as Record<string, { schema?: unknown }> | undefined)?.['application/json']
    responses[200].content = { 'text/plain': { schema: json?.schema ?? { type: 'string' } } }
  }
}

/** The Standard Webhooks event a client's callbackUrl receives when its task is final. */
const WEBHOOK_EVENT_TYPES = ['generate', 'vary', 'upscale'].flatMap((t) => [`${t}.succeeded`, `${t}.failed`])

function webhooks() {
  const headerParam = (name: string, description: string) => ({ name, in: 'header', required: true, description, schema: { type: 'string' } })
  const post = (type: string) => ({
    post: {
      operationId: `webhook_${type.replace('.', '_')}`,
      summary: `Sent to the task's callbackUrl when a ${type.split('.')[0]} task ${type.endsWith('succeeded') ? 'succeeds' : 'fails'}`,
      description:
        'Signed as Standard Webhooks do: webhook-signature is "v1," + base64(HMAC-SHA256(WEBHOOK_SECRET, "<webhook-id>.<webhook-timestamp>.<body>")). ' +
        'The same event (same webhook-id, same body) is retried on any answer but 2xx, on the schedule WEBHOOK_RETRY_SCHEDULE gives; 410 stops it.',
      tags: ['webhooks'],
      parameters: [
        headerParam('webhook-id', 'The event id: the same on every attempt (deduplicate on it)'),
        headerParam('webhook-timestamp', 'Seconds since the epoch when this attempt was signed'),
        headerParam('webhook-signature', 'v1,<base64 signature>')
      ],
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { allOf: [ref('#/components/schemas/WebhookEvent')], properties: { type: { const: type } } } } }
      },
      responses: {
        '2XX': { description: 'Received: no more attempts' },
        '410': { description: 'Gone: the delivery stops (dead-lettered)' },
        default: { description: 'Anything else: retried later' }
      }
    }
  })
  return Object.fromEntries(WEBHOOK_EVENT_TYPES.map((type) => [type, post(type)]))
}

const WebhookEventSchema = {
  type: 'object',
  title: 'WebhookEvent',
  required: ['type', 'timestamp', 'data'],
  properties: {
    type: { type: 'string', enum: WEBHOOK_EVENT_TYPES, description: '<task type>.<final status>' },
    timestamp: { type: 'string', format: 'date-time', description: 'When the task became final' },
    data: ref('#/components/schemas/Task')
  }
}

/** @fastify/swagger's transformObject: the generated document, made exact. */
export function finishDocument(generated: Json): Json {
  const doc = plainJsonSchema(generated) as Json & { paths: Record<string, Record<string, Operation>>; components: Json & { schemas?: Json } }
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) shapeOperation(path, method, op)
  }
  doc.components = {
    ...doc.components,
    schemas: { ...doc.components.schemas, WebhookEvent: WebhookEventSchema },
    headers: HEADERS
  }
  doc.webhooks = webhooks()
  return doc
}
