import { createReadStream } from 'node:fs'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Repository, ResultFileRow } from '../db/repository.js'
import { NotFoundError, ResultPendingError, ResultUnavailableError } from '../errors.js'

/** A stored result file of the task, or what its absence means: 404, 409 (with Retry-After) or 410. */
export function storedFile(repo: Repository, id: string, index: number): ResultFileRow & { path: string } {
  const file = repo.resultFiles(id).find((f) => f.idx === index)
  if (!file) throw new NotFoundError(`Task ${id} has no archived result ${index}`)
  if (file.status === 'pending') throw Object.assign(new ResultPendingError(id), { headers: { 'retry-after': '5' } })
  if (file.status !== 'stored' || !file.path) throw new ResultUnavailableError(id, file.error ?? file.status)
  return file as ResultFileRow & { path: string }
}

/**
 * Bytes that never change once stored (an archived image, its thumbnail): cached as long as the
 * client likes, by ETag, with 304 (and no body) for a matching If-None-Match.
 */
export function sendImmutable(request: FastifyRequest, reply: FastifyReply, f: { path: string; etag: string; contentType: string; bytes: number }) {
  reply.header('etag', f.etag).header('cache-control', 'private, max-age=31536000, immutable')
  if (request.headers['if-none-match']?.split(/\s*,\s*/).includes(f.etag)) return reply.code(304).send(undefined as never)
  return reply.type(f.contentType).header('content-length', String(f.bytes)).send(createReadStream(f.path) as unknown as Buffer)
}
