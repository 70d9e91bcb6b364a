import type { RecordState } from './views.js'

/** CDN answers sent before the request reached the origin: no task exists (kie-api.md: safe to resend). */
export type CdnBeforeOrigin = 'cdn521' | 'cdn522' | 'cdn523' | 'cdn525' | 'cdn526' | 'http503'
/** CDN answers sent after the origin made the task: it exists, bills and calls back (kie-api.md: never resend). */
export type CdnAfterOrigin = 'cdn502' | 'cdn504' | 'cdn520' | 'cdn524'
export type UpscaleFault = 'http429' | 'code455' | 'http500' | 'nonJson' | 'acceptThenHangup' | 'stall'
  | 'code500Refusal' | CdnBeforeOrigin | CdnAfterOrigin
/** The same faults under the name that says what they strike: any task-creating request. */
export type TaskFault = UpscaleFault
// New kinds go last: pickUpscaleFault walks this order, so a seed keeps drawing what it drew before.
export const UPSCALE_FAULTS: readonly UpscaleFault[] = ['http429', 'code455', 'http500', 'nonJson', 'acceptThenHangup', 'stall',
  'code500Refusal', 'cdn521', 'cdn522', 'cdn523', 'cdn525', 'cdn526', 'http503', 'cdn502', 'cdn504', 'cdn520', 'cdn524']

/** Switches that make the simulator misbehave the way kie.ai is documented (or feared) to. All off by default. */
export interface Chaos {
  /** 0..1: probability that a finished task's callback is lost entirely (no attempt, no retries). */
  dropCallbackRate: number
  /** 0..1: probability that a delivered callback is sent a second time (a duplicate, after duplicateDelayMs). */
  duplicateCallbackRate: number
  duplicateDelayMs: number
  /** extra delay before the first callback attempt (tasks still complete — record-info shows final — on time). */
  callbackDelayMs: number
  /** random extra delay 0..jitter per callback: callbacks of different tasks arrive out of order. */
  callbackJitterMs: number
  /** when true, record-info reports the opposite final outcome of the one the callback will carry
   *  (success <-> generation failed), to model record-info disagreeing with a late callback. */
  recordInfoDisagrees: boolean
  /** when true, record-info keeps answering successFlag 0 (generating) forever, even after completion. */
  recordInfoStuckGenerating: boolean
  /** per-request probabilities for answers that replace normal handling (sum <= 1), drawn for every
   *  task-creating request: generate, generateVary and generateUpscale (the name is from when upscale was the only one). */
  upscaleFaults: Partial<Record<UpscaleFault, number>>
}

export const defaultChaos = (): Chaos => ({
  dropCallbackRate: 0,
  duplicateCallbackRate: 0,
  duplicateDelayMs: 20,
  callbackDelayMs: 0,
  callbackJitterMs: 0,
  recordInfoDisagrees: false,
  recordInfoStuckGenerating: false,
  upscaleFaults: {}
})

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** true with probability p; rates of 0 and 1 draw nothing, so they never shift a seeded sequence. */
export function chance(rand: () => number, p: number): boolean {
  if (!(p > 0)) return false
  if (p >= 1) return true
  return rand() < p
}

/** Uniform 0..max (no draw when max is 0). */
export const jitter = (rand: () => number, max: number): number => (max > 0 ? rand() * max : 0)

/** One draw against the cumulative fault probabilities (in UPSCALE_FAULTS order); null = handle normally. */
export function pickUpscaleFault(rand: () => number, faults: Chaos['upscaleFaults']): UpscaleFault | null {
  const active = UPSCALE_FAULTS.filter((kind) => (faults[kind] ?? 0) > 0)
  if (active.length === 0) return null
  const total = active.reduce((sum, kind) => sum + (faults[kind] ?? 0), 0)
  // at a total of 1 or more, some fault always fires: no draw needed when only one is active
  const r = total >= 1 && active.length === 1 ? 0 : rand()
  let edge = 0
  for (const kind of active) {
    edge += faults[kind] ?? 0
    if (r < edge) return kind
  }
  return null
}

/** A sliding window counter over arrival times; rejected events are not counted (kie.ai drops them). */
export class SlidingWindow {
  #times: number[] = []

  constructor(public max: number, public windowMs: number) {}

  admit(at: number): boolean {
    // entries that arrived after `at` (handled out of order) count too: no window may ever exceed max
    this.#times = this.#times.filter((t) => t > at - this.windowMs)
    if (this.#times.length >= this.max) return false
    this.#times.push(at)
    return true
  }
}

/**
 * What record-info shows under the chaos switches. `alternateUrls` supplies result URLs when a failed
 * task must look successful; `failure` is what a successful task shows when it must look failed.
 */
export function chaoticRecordInfo(info: RecordState, chaos: Chaos, alternateUrls: () => string[],
  failure: { flag: number, message: string }): RecordState {
  if (chaos.recordInfoStuckGenerating) {
    return { ...info, successFlag: 0, resultUrls: null, errorCode: null, errorMessage: null, completeTime: null }
  }
  if (!chaos.recordInfoDisagrees || info.successFlag === 0) return info
  if (info.successFlag === 1) {
    return { ...info, successFlag: failure.flag, resultUrls: [], errorCode: 500, errorMessage: failure.message }
  }
  return { ...info, successFlag: 1, resultUrls: alternateUrls(), errorCode: null, errorMessage: null }
}
