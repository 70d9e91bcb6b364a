import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { CallLog } from './calls.js'
import { CallbackSender, type CallbackAttempt } from './callbacks.js'
import {
  chance, chaoticRecordInfo, defaultChaos, jitter, mulberry32, pickUpscaleFault, type Chaos, type UpscaleFault
} from './chaos.js'
import { ResultFiles } from './files.js'
import type { GenerateBody } from './generate-rules.js'
import type { RecordInfo, UpscaleBody, VaryBody } from './schemas.js'
import { generateFields, parentFields, startTask, upscaleFields, varyFields, type TaskFields } from './tasks.js'
import { TimerSet } from './timers.js'
import type { SimTask, SimulatorConfig } from './types.js'
import { defaultVariants, type Variants } from './variants.js'
import { callbackPayload, presentRecordInfo, toRecordState } from './views.js'

export type { ApiCall, ScriptedEndpoint, ScriptedResponse, SimTask, SimulatorConfig } from './types.js'

export const UPSCALE_FAILURE = 'Generation failed: content moderation'

const newId = (): string => randomBytes(16).toString('hex')

export class Simulator extends CallLog {
  readonly callbacks: CallbackAttempt[] = []
  /** ids of finished tasks whose callback chaos dropped (no attempt was made) */
  readonly droppedCallbacks: string[] = []
  readonly tasks = new Map<string, SimTask>()
  credits: number
  failUpscales = false
  /** generate and generateVary tasks end in failure (UPSCALE_FAILURE's message) while set */
  failGrids = false
  /** The next N result downloads answer 500 (a flaky CDN). */
  failFileDownloads = 0
  readonly fileRequests: Array<{ at: number; path: string }> = []
  publicUrl: string
  /** the chaos switches; change them at any time */
  chaos: Chaos
  /** which of the documented forms the answers take; change them at any time */
  variants: Variants
  readonly config: Readonly<SimulatorConfig>

  readonly #files = new ResultFiles()
  #rand: () => number = Math.random
  readonly #completions = new Map<string, NodeJS.Timeout | null>()
  #paused = false
  readonly #timers = new TimerSet()
  readonly #sender: CallbackSender
  readonly #log: FastifyBaseLogger

  constructor(config: SimulatorConfig, log: FastifyBaseLogger) {
    super(config)
    this.config = Object.freeze({ ...config })
    this.credits = config.credits
    this.chaos = { ...defaultChaos(), ...config.chaos }
    this.variants = { ...defaultVariants(), ...config.variants }
    this.reseed(config.seed)
    this.publicUrl = config.publicUrl
    this.#log = log
    this.#sender = new CallbackSender({
      hmacKey: config.hmacKey,
      retryScale: config.callbackRetryScale,
      timeoutMs: config.callbackTimeoutMs,
      timers: this.#timers,
      log,
      record: (attempt) => { this.callbacks.push(attempt) }
    })
  }

  /** Restart the chaos randomness from `seed` (undefined: Math.random). */
  reseed(seed?: number): void {
    this.#rand = seed === undefined ? Math.random : mulberry32(seed)
  }

  /** Draw the chaos fault (if any) that answers a task-creating request (generate, generateVary or generateUpscale) instead of normal handling. */
  pickUpscaleFault(): UpscaleFault | null {
    return pickUpscaleFault(this.#rand, this.chaos.upscaleFaults)
  }

  /** record-info's `data` for a task, chaos switches and variants applied (null: sent as null). */
  recordInfoOf(task: SimTask): RecordInfo | null {
    const failure = { flag: this.variants.failedFlag, message: UPSCALE_FAILURE }
    const state = chaoticRecordInfo(toRecordState(task), this.chaos, () => this.#alternateUrls(task), failure)
    return presentRecordInfo(state, this.variants)
  }

  createGenerateTask(body: GenerateBody): SimTask {
    return this.#addTask(generateFields(body, this.failGrids ? UPSCALE_FAILURE : null))
  }

  /** A new grid from one image of a finished grid (a generate or vary task). */
  createVaryTask(parent: SimTask, body: VaryBody): SimTask {
    return this.#addTask(varyFields(parent, body, this.failGrids ? UPSCALE_FAILURE : null))
  }

  createUpscaleTask(parent: SimTask, body: UpscaleBody): SimTask {
    const fails = this.failUpscales || (parent.prompt ?? '').includes('fail-upscale')
    return this.#addTask(upscaleFields(parent, body, fails ? UPSCALE_FAILURE : null))
  }

  /** A finished 4-image parent task, made without HTTP. */
  createParentTask(prompt = 'a simulated prompt'): string {
    const task = this.#addTask(parentFields(prompt), false)
    this.#finish(task)
    return task.id
  }

  /** Finish a generating task now (its callback goes out as usual); false if it was not generating. */
  completeNow(taskId: string): boolean {
    const task = this.tasks.get(taskId)
    if (task === undefined || task.state !== 'generating') return false
    this.#timers.cancel(this.#completions.get(taskId))
    this.#completions.delete(taskId)
    this.#finish(task)
    return true
  }

  /** Hold completions that fall due until resumeCompletions(), for deterministic mid-flight states. */
  pauseCompletions(): void { this.#paused = true }

  resumeCompletions(): void {
    this.#paused = false
    for (const [id, timer] of [...this.#completions]) {
      if (timer === null) this.completeNow(id)
    }
  }

  /** Send the completion callback of a finished task once more, now; resolves to the HTTP status received. */
  async deliverCallback(taskId: string): Promise<number | null> {
    const task = this.tasks.get(taskId)
    if (task === undefined || task.state === 'generating') throw new Error(`task ${taskId} is not finished`)
    if (task.callBackUrl === null) throw new Error(`task ${taskId} has no callBackUrl`)
    return await this.#sender.send(task.id, task.callBackUrl, callbackPayload(task, this.variants.callbackShape))
  }

  /** Whether the CDN still serves this result file (variants.fileRetentionMs). */
  hasFile(name: string, now = Date.now()): boolean { return this.#files.has(name, this.variants.fileRetentionMs, now) }

  close(): void {
    this.#timers.close()
    this.#sender.close()
  }

  #addTask(fields: TaskFields, schedule = true): SimTask {
    const task = startTask(fields, newId())
    this.tasks.set(task.id, task)
    if (schedule) {
      this.#completions.set(task.id, this.#timers.after(this.config.completionDelayMs, () => {
        if (this.#paused) this.#completions.set(task.id, null)
        else this.completeNow(task.id)
      }))
    }
    return task
  }

  #finish(task: SimTask): void {
    task.completeTime = Date.now()
    if (task.failWith !== null) {
      task.state = 'failed'
      task.successFlag = this.variants.failedFlag
      task.errorMessage = task.failWith
    } else {
      const names = ResultFiles.namesFor(task, newId())
      this.#files.add(task, names)
      task.resultUrls = names.map((name) => `${this.publicUrl}/files/${name}`)
      task.state = 'success'
      task.successFlag = 1
    }
    this.#log.info({ taskId: task.id, state: task.state }, 'simulator: task finished')
    if (task.callBackUrl !== null) this.#callBack(task, task.callBackUrl)
  }

  /** Send the completion callback, through the callback chaos switches. */
  #callBack(task: SimTask, url: string): void {
    const chaos = this.chaos
    if (chance(this.#rand, chaos.dropCallbackRate)) {
      this.droppedCallbacks.push(task.id)
      this.#log.info({ taskId: task.id }, 'simulator: chaos dropped the callback')
      return
    }
    const delayMs = chaos.callbackDelayMs + jitter(this.#rand, chaos.callbackJitterMs)
    const duplicate = chance(this.#rand, chaos.duplicateCallbackRate)
    this.#sender.deliver(task.id, url, callbackPayload(task, this.variants.callbackShape), {
      delayMs,
      duplicateAfterMs: duplicate ? chaos.duplicateDelayMs : null
    })
  }

  /** Result files for a failed task that record-info must show as a success (recordInfoDisagrees). */
  #alternateUrls(task: SimTask): string[] {
    const names = ResultFiles.namesFor(task, task.id)
    this.#files.add(task, names)
    return names.map((name) => `${this.publicUrl}/files/${name}`)
  }
}
