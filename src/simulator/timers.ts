/** Owns every timer the simulator arms, so close() can clear them all and none keeps the process alive. */
export class TimerSet {
  readonly #timers = new Set<NodeJS.Timeout>()
  #closed = false

  after(ms: number, fn: () => void): NodeJS.Timeout | null {
    if (this.#closed) return null
    const t = setTimeout(() => {
      this.#timers.delete(t)
      fn()
    }, Math.max(0, ms))
    t.unref()
    this.#timers.add(t)
    return t
  }

  cancel(t: NodeJS.Timeout | null | undefined): void {
    if (t == null) return
    clearTimeout(t)
    this.#timers.delete(t)
  }

  get closed(): boolean { return this.#closed }

  close(): void {
    this.#closed = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }
}
