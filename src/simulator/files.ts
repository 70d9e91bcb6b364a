import type { SimTask } from './types.js'

/** The result files the simulated CDN holds, each with the task that made it, for retention. */
export class ResultFiles {
  readonly #owners = new Map<string, SimTask>()

  /** File names for a finished task: one for an upscale, four for a grid, like kie.ai's `<hex>_0_<i>`. */
  static namesFor(task: SimTask, hex: string): string[] {
    return task.type === 'upscale' ? [`${hex}_0_0.png`] : [0, 1, 2, 3].map((i) => `${hex}_0_${i}.png`)
  }

  add(task: SimTask, names: readonly string[]): void {
    for (const name of names) this.#owners.set(name, task)
  }

  /** Whether the file is still kept: it exists and its task finished less than retentionMs ago. */
  has(name: string, retentionMs: number, now = Date.now()): boolean {
    const owner = this.#owners.get(name)
    if (owner === undefined) return false
    const finishedAt = owner.completeTime ?? now
    return now - finishedAt < retentionMs
  }
}
