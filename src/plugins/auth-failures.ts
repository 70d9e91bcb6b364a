declare module 'fastify' {
  interface FastifyInstance {
    /** Failed client authentications per address; absent in an app that does not limit them. */
    authFailures?: AuthFailures
  }
}

export interface AuthFailureSettings {
  /** Failures one address may have in a window; the next request from it is refused. */
  readonly max: number
  readonly windowMs: number
  /** Addresses remembered at most; beyond, the oldest windows are forgotten first. */
  readonly maxAddresses?: number
}

export interface AuthFailures {
  /** Seconds until the address may try again, or 0 when it is not blocked. */
  blockedFor(ip: string): number
  fail(ip: string): void
  readonly size: number
}

export const DEFAULT_AUTH_FAILURES = Object.freeze({ max: 20, windowMs: 60_000, maxAddresses: 10_000 })

/**
 * A fixed window per address, opened by its first failure: after `max` failures every request
 * from the address is refused until the window ends, so guessing keys costs a minute per
 * `max` guesses. Memory is bounded: a Map in window-start order, pruned from the front.
 */
export function createAuthFailures(settings: Partial<AuthFailureSettings>, now: () => number): AuthFailures {
  const { max, windowMs, maxAddresses } = { ...DEFAULT_AUTH_FAILURES, ...settings }
  const windows = new Map<string, { start: number; count: number }>()

  const prune = (t: number) => {
    for (const [ip, w] of windows) {
      if (w.start + windowMs > t && windows.size <= maxAddresses) break
      windows.delete(ip)
    }
  }

  return {
    blockedFor(ip) {
      const w = windows.get(ip)
      const t = now()
      if (!w || w.count < max || w.start + windowMs <= t) return 0
      return Math.max(1, Math.ceil((w.start + windowMs - t) / 1000))
    },
    fail(ip) {
      const t = now()
      let w = windows.get(ip)
      if (!w || w.start + windowMs <= t) {
        // A new window goes to the back, so the Map stays ordered by window start.
        windows.delete(ip)
        w = { start: t, count: 0 }
        windows.set(ip, w)
      }
      w.count++
      prune(t)
    },
    get size() {
      return windows.size
    }
  }
}
