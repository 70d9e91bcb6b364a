export interface BackoffOptions {
  baseMs: number
  capMs?: number
  /** The delay is drawn from [lo, hi] times the capped ceiling: [0, 1] is full jitter. */
  jitter: readonly [lo: number, hi: number]
  random?: (() => number) | undefined
}

export const FULL_JITTER = [0, 1] as const

/**
 * The one backoff of the gateway: base doubling from attempt 1, capped, then jittered. The
 * send queue uses full jitter; the reconciler, the archive and webhooks a narrower band.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const ceiling = Math.min(opts.capMs ?? Number.POSITIVE_INFINITY, opts.baseMs * 2 ** Math.max(0, attempt - 1))
  const [lo, hi] = opts.jitter
  return Math.round(ceiling * (lo + (hi - lo) * (opts.random ?? Math.random)()))
}
