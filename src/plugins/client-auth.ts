import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { UnauthorizedError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Fingerprint of the client key that authenticated the request: the owner of its tasks. */
    clientId: string
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest()

/** A stable, non-reversible name for a key, safe to store and log. */
export const keyFingerprint = (key: string) => sha256(key).toString('hex').slice(0, 24)

/** An onRequest hook that admits only the configured client keys. */
export function clientAuth(apiKeys: readonly string[]) {
  const known = apiKeys.map((key) => ({ digest: sha256(key), id: keyFingerprint(key) }))
  return async function requireClientKey(request: FastifyRequest, _reply: FastifyReply) {
    const header = request.headers.authorization
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    if (!match) throw new UnauthorizedError('Missing Authorization: Bearer <api key> header')
    // Equal-length digests, every key compared: the timing says nothing about which key or how close.
    const given = sha256(match[1] as string)
    let found: string | null = null
    for (const k of known) if (timingSafeEqual(k.digest, given)) found = k.id
    if (found === null) throw new UnauthorizedError('Unknown API key')
    request.clientId = found
  }
}
