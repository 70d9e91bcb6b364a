import type { FastifyBaseLogger } from 'fastify'

export interface CircuitBreakerOptions {
  failureThreshold: number
  cooldownMs: number
  log: FastifyBaseLogger
}

/**
 * Pauses sending after repeated 455/5xx/network failures. Closed → open (for a cool-off) →
 * half-open (one probe) → closed again on success. Logs transitions only, never per task.
 */
export function createCircuitBreaker(opts: CircuitBreakerOptions) {
  let failures = 0
  let openUntil: number | null = null
  let probing = false

  return {
    /** Whether a request may start now; in half-open state only one probe may. */
    allow(now: number): boolean {
      if (openUntil === null) return true
      if (now < openUntil || probing) return false
      probing = true
      return true
    },
    /** When sending may resume, or null when closed. */
    openUntil: () => openUntil,
    /** A probe that did not get to send (no budget) gives its turn back. */
    cancelProbe() {
      probing = false
    },
    /** kie.ai answered (even with a refusal): it is up. */
    success() {
      if (openUntil !== null) opts.log.info('kie.ai answers again: circuit closed, sending resumes')
      failures = 0
      openUntil = null
      probing = false
    },
    failure(now: number, reason: string) {
      failures++
      const wasProbe = probing
      probing = false
      if (wasProbe || (openUntil === null && failures >= opts.failureThreshold)) {
        if (openUntil === null) {
          opts.log.warn({ failures, reason, cooldownMs: opts.cooldownMs }, 'kie.ai keeps failing: circuit open, sending paused')
        }
        openUntil = now + opts.cooldownMs
      }
    }
  }
}

export type CircuitBreaker = ReturnType<typeof createCircuitBreaker>
