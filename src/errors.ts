import { STATUS_CODES } from 'node:http'
import createError from '@fastify/error'
import { Type, type Static } from '@sinclair/typebox'
import { errorExample } from './openapi-examples.js'

/** Every code the gateway answers or stores on a task: one list, for the routes, the tasks and the OpenAPI document. */
export const ERROR_CODES = [
  'GW_VALIDATION',
  'GW_INVALID_JSON',
  'GW_BAD_URL',
  'GW_BAD_REQUEST',
  'GW_UNAUTHORIZED',
  'GW_CALLBACK_UNAUTHORIZED',
  'GW_NOT_FOUND',
  'GW_REQUEST_TIMEOUT',
  'GW_NOTHING_TO_RETRY',
  'GW_TASK_NOT_OPEN',
  'GW_RESULT_PENDING',
  'GW_RESULT_UNAVAILABLE',
  'GW_PAYLOAD_TOO_LARGE',
  'GW_URI_TOO_LONG',
  'GW_UNSUPPORTED_MEDIA_TYPE',
  'GW_IDEMPOTENCY_MISMATCH',
  'GW_PARENT_INVALID',
  'GW_RATE_LIMITED',
  'GW_HEADERS_TOO_LARGE',
  'GW_INTERNAL',
  'GW_NOT_READY',
  'GW_SHUTTING_DOWN',
  'GW_UPSTREAM_INSUFFICIENT_CREDITS',
  'GW_UPSTREAM_REJECTED',
  'GW_UPSTREAM_AUTH',
  'GW_UPSTREAM_GENERATION_FAILED',
  'GW_UPSTREAM_ERROR',
  'GW_UPSTREAM_FEATURE_DISABLED',
  'GW_UPSTREAM_UNAVAILABLE',
  // Stored on tasks that fail after they were accepted.
  'GW_UPSTREAM_FAILED',
  'GW_UPSTREAM_OUTCOME_UNKNOWN',
  'GW_TIMEOUT',
  'GW_PARENT_FAILED'
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]
export const ErrorCodeSchema = Type.Union(ERROR_CODES.map((code) => Type.Literal(code)), { description: 'Stable machine-readable error code' })

// One shape for every error response; `code` is the stable, machine-readable part.
export const ErrorResponseSchema = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
    error: Type.String({ description: 'HTTP reason phrase' }),
    code: ErrorCodeSchema,
    message: Type.String()
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse', examples: [errorExample] }
)
export type ErrorResponse = Static<typeof ErrorResponseSchema>

export const isErrorCode = (code: string | undefined): code is ErrorCode => (ERROR_CODES as readonly string[]).includes(code ?? '')

/** The one builder of an error body: every error response, whoever writes it, is made here. */
export function errorBody(statusCode: number, code: ErrorCode, message: string): ErrorResponse {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message }
}

// `%s` is filled by the first constructor argument. Fastify's own parser errors (bad JSON,
// wrong content type, body too large) are mapped to GW_* codes by the error handler.
export const ValidationError = createError('GW_VALIDATION', '%s', 400)
export const UnauthorizedError = createError('GW_UNAUTHORIZED', '%s', 401)
export const NotFoundError = createError('GW_NOT_FOUND', '%s', 404)
export const CallbackUnauthorizedError = createError('GW_CALLBACK_UNAUTHORIZED', '%s', 401)
export const ClientRateLimitedError = createError('GW_RATE_LIMITED', 'Too many requests: at most %s per window for this API key; retry in %s s', 429)
export const AuthFailuresLimitedError = createError('GW_RATE_LIMITED', 'Too many failed authentications from this address; retry in %s s', 429)
export const NotReadyError = createError('GW_NOT_READY', '%s', 503)

// kie.ai's answers to a submission, as the client sees them.
export const UpstreamInsufficientCreditsError = createError(
  'GW_UPSTREAM_INSUFFICIENT_CREDITS',
  'kie.ai account has insufficient credits: %s',
  402
)
export const UpstreamRejectedError = createError('GW_UPSTREAM_REJECTED', 'kie.ai rejected the task: %s', 422)
export const UpstreamAuthError = createError(
  'GW_UPSTREAM_AUTH',
  "kie.ai refused the gateway's API key; the operator must fix KIE_API_KEY",
  502
)
export const UpstreamGenerationFailedError = createError(
  'GW_UPSTREAM_GENERATION_FAILED',
  'kie.ai failed to generate: %s',
  502
)
export const UpstreamErrorError = createError('GW_UPSTREAM_ERROR', 'kie.ai answered with an unexpected error: %s', 502)
export const UpstreamFeatureDisabledError = createError(
  'GW_UPSTREAM_FEATURE_DISABLED',
  'kie.ai has this feature disabled: %s',
  503
)
export const UpstreamUnavailableError = createError('GW_UPSTREAM_UNAVAILABLE', 'kie.ai is unavailable: %s', 503)

export const IdempotencyMismatchError = createError('GW_IDEMPOTENCY_MISMATCH', 'Idempotency-Key %s was already used with a different request body', 422)
export const ParentInvalidError = createError('GW_PARENT_INVALID', '%s', 422)
export const NothingToRetryError = createError('GW_NOTHING_TO_RETRY', 'Task %s has no dead-lettered webhook delivery', 409)
/** An operator asked record-info about a task that is not open (queued, final, or without a kie.ai id yet). */
export const TaskNotOpenError = createError('GW_TASK_NOT_OPEN', 'Task %s cannot be reconciled now: %s', 409)
export const ResultPendingError = createError('GW_RESULT_PENDING', 'The result of task %s is still being archived', 409)
export const ResultUnavailableError = createError('GW_RESULT_UNAVAILABLE', 'The result of task %s is not available: %s', 410)

/** A client's webhook URL that the gateway will not call (answered 400 at submit time). */
export class UnsafeUrlError extends Error {
  override name = 'UnsafeUrlError'
}

/** A missing or malformed environment variable: the process stops with this one line. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}
