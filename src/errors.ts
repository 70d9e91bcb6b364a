import createError from '@fastify/error'
import { Type, type Static } from '@sinclair/typebox'
import { errorExample } from './openapi-examples.js'

// One shape for every error response; `code` is the stable, machine-readable part.
export const ErrorResponseSchema = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
    error: Type.String({ description: 'HTTP reason phrase' }),
    code: Type.String({ description: 'Stable machine-readable error code, e.g. GW_VALIDATION' }),
    message: Type.String()
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse', examples: [errorExample] }
)
export type ErrorResponse = Static<typeof ErrorResponseSchema>

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

// Codes stored on tasks that fail after they were accepted.
export const TaskErrorCodes = {
  upstreamFailed: 'GW_UPSTREAM_FAILED'
} as const
