import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Repository } from '../db/repository.js'

/**
 * After a stop, however sudden: requests that may have reached kie.ai are never resent (their
 * tasks wait for their callbacks), rate slots cut off count as late as they could have, and
 * every lease the last process held is void. Runs once, before any request or worker.
 */
export function recoverFromLastStop(deps: { repo: Repository; clock: Clock; kieTimeoutMs: number; log: FastifyBaseLogger }): void {
  const recovered = deps.repo.recover(deps.clock.now(), deps.kieTimeoutMs)
  if (recovered.unknown > 0) deps.log.warn(recovered, 'recovered tasks whose kie.ai request was in flight at the last stop')
}
