import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { AuthFailuresLimitedError, UnauthorizedError } from '../errors.js'
import { secretLookup } from '../safe-equal.js'
import './auth-failures.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who owns the tasks the request makes: the key's name, or its fingerprint. */
    clientId: string
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest()

/** A stable, non-reversible name for a key, safe to store and log. */
export const keyFingerprint = (key: string) => sha256(key).toString('hex').slice(0, 24)

const NAMED = /^([A-Za-z0-9_.-]{1,64}):(.+)$/

/**
 * API_KEYS entries are `key` or `name:key`. A named key's tasks belong to the name, so a
 * client's key can be rotated (old and new listed under one name) without losing its tasks.
 */
export function parseClientKey(entry: string): { key: string; clientId: string; name: string } {
  const m = NAMED.exec(entry)
  if (m && (m[2] as string).length >= 16) return { key: m[2] as string, clientId: `name:${m[1]}`, name: m[1] as string }
  const fp = keyFingerprint(entry)
  return { key: entry, clientId: fp, name: `key-${fp.slice(0, 8)}` }
}

/**
 * An onRequest hook that admits only the configured client keys. An address with too many
 * wrong keys (the app's authFailures) is refused, even with a valid key, until its window ends.
 */
export function clientAuth(apiKeys: readonly string[]) {
  return keyAuth(apiKeys, 'api key', 'API key', (request, found) => {
    request.clientId = found.clientId
    request.clientName = found.name
  })
}

/**
 * The same for the admin API's keys (ADMIN_API_KEYS): a client key is not one, and wrong admin
 * keys count toward the same per-address limit. The request's log line names `admin:<name>`.
 */
export function adminAuth(adminKeys: readonly string[]) {
  return keyAuth(adminKeys, 'admin key', 'admin key', (request, found) => {
    request.clientId = `admin:${found.clientId}`
    request.clientName = `admin:${found.name}`
  })
}

type ParsedKey = ReturnType<typeof parseClientKey>

function keyAuth(entries: readonly string[], placeholder: string, what: string, admit: (request: FastifyRequest, found: ParsedKey) => void) {
  const lookup = secretLookup(entries.map(parseClientKey), (k) => k.key)
  // Callback style: it runs on every client request, and an async hook costs a promise each.
  return function requireKey(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    const failures = request.server.authFailures
    const retryAfter = failures?.blockedFor(request.ip) ?? 0
    if (retryAfter > 0) return done(Object.assign(new AuthFailuresLimitedError(retryAfter), { headers: { 'retry-after': String(retryAfter) } }))
    const header = request.headers.authorization
    // Only a presented credential counts as a guess: a missing header reveals nothing about any key.
    const refuse = (message: string) => {
      if (header !== undefined) failures?.fail(request.ip)
      done(new UnauthorizedError(message))
    }
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    if (!match) return refuse(`Missing Authorization: Bearer <${placeholder}> header`)
    // Every key compared in constant time: the timing says nothing about which key or how close.
    const found = lookup(match[1] as string)
    if (found === null) return refuse(`Unknown ${what}`)
    admit(request, found)
    done()
  }
}
