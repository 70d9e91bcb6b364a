import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { ValidationError } from '../errors.js'

/** Keys are kept at least this long (Stripe keeps them 24 hours too). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000

/** The Idempotency-Key header, validated; undefined when absent. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key']
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !/^[\x20-\x7e]{1,255}$/.test(value) || value.trim() === '') {
    throw new ValidationError('headers.idempotency-key: must be 1 to 255 printable ASCII characters, sent once')
  }
  return value
}

/** Canonical JSON (sorted keys), so key order does not make two equal bodies differ. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

export const requestHash = (body: unknown) => createHash('sha256').update(canonical(body)).digest('hex')

/** Requests in progress per (owner, key): a concurrent duplicate waits for the first one's answer. */
export function createInProgress() {
  const pending = new Map<string, Promise<void>>()
  return {
    start(owner: string, key: string): () => void {
      let done!: () => void
      const id = `${owner}\n${key}`
      pending.set(id, new Promise<void>((resolve) => (done = resolve)))
      return () => {
        pending.delete(id)
        done()
      }
    },
    wait: (owner: string, key: string) => pending.get(`${owner}\n${key}`)
  }
}
