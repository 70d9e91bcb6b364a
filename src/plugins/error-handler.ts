import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { errorBody, isErrorCode, type ErrorCode, type ErrorResponse } from '../errors.js'

interface ValidationItem {
  instancePath?: string
  message?: string
  params?: Record<string, unknown>
}

function validationMessage(err: FastifyError): string {
  const first = (err.validation?.[0] ?? {}) as ValidationItem
  const where = err.validationContext ?? 'request'
  const path = (first.instancePath ?? '').split('/').filter(Boolean).join('.')
  const what = (first.message ?? 'is invalid').replace(/^Expected/, 'expected')
  const field = path ? `${where}.${path}` : where
  if (what === 'Unexpected property') return `${field}: unknown field (not allowed)`
  if (what === 'expected required property') return `${field}: is required`
  return `${field}: ${what}`
}

/** Maps every error to the one JSON shape, with a stable code; hides the internals of 5xx. */
export function toErrorResponse(err: FastifyError): ErrorResponse {
  let statusCode = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
  let code: string = err.code
  let message = err.message
  if (err.validation) {
    statusCode = 400
    code = 'GW_VALIDATION'
    message = validationMessage(err)
  } else if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (err instanceof SyntaxError && statusCode === 400)) {
    code = 'GW_INVALID_JSON'
    message = 'Request body is not valid JSON'
  } else if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    code = 'GW_INVALID_JSON'
    message = 'Request body is empty but Content-Type is application/json'
  } else if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    code = 'GW_UNSUPPORTED_MEDIA_TYPE'
    message = 'Content-Type must be application/json'
  } else if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    code = 'GW_PAYLOAD_TOO_LARGE'
    message = 'Request body is too large'
  } else if (statusCode >= 500 && !code?.startsWith('GW_UPSTREAM')) {
    code = 'GW_INTERNAL'
    message = 'Internal server error'
  } else if (!isErrorCode(code)) {
    code = statusCode === 404 ? 'GW_NOT_FOUND' : 'GW_BAD_REQUEST'
  }
  return errorBody(statusCode, code as ErrorCode, message)
}

export default fp(
  async function errorHandler(app: FastifyInstance) {
    app.setErrorHandler((err: FastifyError & { headers?: Record<string, string> }, request, reply) => {
      const body = toErrorResponse(err)
      // The request's one log line carries the code; a 5xx also logs the error itself.
      request.errorCode = body.code
      if (body.statusCode >= 500) request.log.error({ err }, 'request failed')
      if (err.headers) reply.headers(err.headers)
      return reply.code(body.statusCode).send(body)
    })
    app.setNotFoundHandler((request, reply) => {
      request.errorCode = 'GW_NOT_FOUND'
      return reply.code(404).send(errorBody(404, 'GW_NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`))
    })
  },
  { name: 'error-handler', fastify: '5.x', dependencies: ['http-conventions'] }
)
