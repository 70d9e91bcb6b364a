import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { CallbackDispatcher, type CallbackAttempt } from './callbacks.js'
import type { GenerateBody, UpscaleBody } from './schemas.js'
import { TimerSet } from './timers.js'
import { callbackPayload } from './views.js'

export type ScriptedEndpoint = 'generateUpscale' | 'recordInfo'
export type ScriptedResponse =
  | { httpStatus?: number, body?: unknown, raw?: string, delayMs?: number }
  | 'hangup' | 'accept-then-hangup' | 'stall'

export interface SimTask {
  id: string
  type: 'generate' | 'upscale'
  /** what record-info reports as taskType */
  taskType: string
  parentTaskId: string | null
  imageIndex: number | null
  prompt: string | null
  waterMark: string | null
  callBackUrl: string | null
  state: 'generating' | 'success' | 'failed'
  successFlag: 0 | 1 | 3
  resultUrls: string[]
  errorMessage: string | null
  createTime: number
  completeTime: number | null
  paramJson: string
  /** decided at creation so a later change of failUpscales does not flip a running task; null = succeeds */
  failWith: string | null
}

export interface ApiCall {
  at: number
  method: string
  path: string
  query: Record<string, unknown>
  body: unknown
  /** 0 when no HTTP answer was sent (hangup, stall) */
  httpStatus: number
  code: number | null
}

export interface SimulatorConfig {
  hmacKey: string | undefined
  completionDelayMs: number
  callbackRetryScale: number
  callbackTimeoutMs: number
  rateLimitMax: number
  rateLimitWindowMs: number
  credits: number
  publicUrl: string
}

export const UPSCALE_FAILURE = 'Generation failed: content moderation'

const newId = (): string => randomBytes(16).toString('hex')

export class Simulator {
  readonly calls: ApiCall[] = []
  readonly callbacks: CallbackAttempt[] = []
  readonly tasks = new Map<string, SimTask>()
  credits: number
  failUpscales = false
  publicUrl: string
  readonly config: Readonly<SimulatorConfig>

  readonly #files = new Set<string>()
  readonly #scripts: Record<ScriptedEndpoint, ScriptedResponse[]> = { generateUpscale: [], recordInfo: [] }
  #window: number[] = []
  readonly #completions = new Map<string, NodeJS.Timeout | null>()
  #paused = false
  readonly #timers = new TimerSet()
  readonly #dispatcher: CallbackDispatcher
  readonly #log: FastifyBaseLogger

  constructor (config: SimulatorConfig, log: FastifyBaseLogger) {
    this.config = Object.freeze({ ...config })
    this.credits = config.credits
    this.publicUrl = config.publicUrl
    this.#log = log
    this.#dispatcher = new CallbackDispatcher({
      hmacKey: config.hmacKey,
      retryScale: config.callbackRetryScale,
      timeoutMs: config.callbackTimeoutMs,
      timers: this.#timers,
      log,
      record: (attempt) => { this.callbacks.push(attempt) }
    })
  }

  /** Queue forced answers for the next requests to `endpoint`, one per request. */
  script (endpoint: ScriptedEndpoint, ...responses: ScriptedResponse[]): void {
    this.#scripts[endpoint].push(...responses)
  }

  takeScript (endpoint: ScriptedEndpoint): ScriptedResponse | undefined {
    return this.#scripts[endpoint].shift()
  }

  /** Sliding window over new-task requests; a rejected request is dropped and not counted. */
  admitNewTask (now = Date.now()): boolean {
    this.#window = this.#window.filter((t) => now - t < this.config.rateLimitWindowMs)
    if (this.#window.length >= this.config.rateLimitMax) return false
    this.#window.push(now)
    return true
  }

  createGenerateTask (body: GenerateBody): SimTask {
    return this.#addTask({
      type: 'generate',
      taskType: body.taskType,
      parentTaskId: null,
      imageIndex: null,
      prompt: body.prompt,
      waterMark: null,
      callBackUrl: body.callBackUrl ?? null,
      paramJson: JSON.stringify(body),
      failWith: null
    })
  }

  createUpscaleTask (parent: SimTask, body: UpscaleBody): SimTask {
    const fails = this.failUpscales || (parent.prompt ?? '').includes('fail-upscale')
    return this.#addTask({
      type: 'upscale',
      taskType: 'mj_upscale',
      parentTaskId: parent.id,
      imageIndex: body.imageIndex,
      prompt: parent.prompt,
      waterMark: body.waterMark ?? null,
      callBackUrl: body.callBackUrl ?? null,
      paramJson: JSON.stringify(body),
      failWith: fails ? UPSCALE_FAILURE : null
    })
  }

  /** A finished 4-image parent task, made without HTTP. */
  createParentTask (prompt = 'a simulated prompt'): string {
    const task = this.#addTask({
      type: 'generate',
      taskType: 'mj_txt2img',
      parentTaskId: null,
      imageIndex: null,
      prompt,
      waterMark: null,
      callBackUrl: null,
      paramJson: JSON.stringify({ taskType: 'mj_txt2img', prompt }),
      failWith: null
    }, false)
    this.#finish(task)
    return task.id
  }

  /** Finish a generating task now (its callback goes out as usual); false if it was not generating. */
  completeNow (taskId: string): boolean {
    const task = this.tasks.get(taskId)
    if (task === undefined || task.state !== 'generating') return false
    this.#timers.cancel(this.#completions.get(taskId))
    this.#completions.delete(taskId)
    this.#finish(task)
    return true
  }

  /** Hold completions that fall due until resumeCompletions(), for deterministic mid-flight states. */
  pauseCompletions (): void { this.#paused = true }

  resumeCompletions (): void {
    this.#paused = false
    for (const [id, timer] of [...this.#completions]) {
      if (timer === null) this.completeNow(id)
    }
  }

  /** Send the completion callback of a finished task once more, now; resolves to the HTTP status received. */
  async deliverCallback (taskId: string): Promise<number | null> {
    const task = this.tasks.get(taskId)
    if (task === undefined || task.state === 'generating') throw new Error(`task ${taskId} is not finished`)
    if (task.callBackUrl === null) throw new Error(`task ${taskId} has no callBackUrl`)
    return await this.#dispatcher.send(task.id, task.callBackUrl, callbackPayload(task))
  }

  hasFile (name: string): boolean { return this.#files.has(name) }

  close (): void {
    this.#timers.close()
    this.#dispatcher.close()
  }

  #addTask (fields: Omit<SimTask, 'id' | 'state' | 'successFlag' | 'resultUrls' | 'errorMessage' | 'createTime' | 'completeTime'>,
    schedule = true): SimTask {
    const task: SimTask = {
      ...fields,
      id: newId(),
      state: 'generating',
      successFlag: 0,
      resultUrls: [],
      errorMessage: null,
      createTime: Date.now(),
      completeTime: null
    }
    this.tasks.set(task.id, task)
    if (schedule) {
      this.#completions.set(task.id, this.#timers.after(this.config.completionDelayMs, () => {
        if (this.#paused) this.#completions.set(task.id, null)
        else this.completeNow(task.id)
      }))
    }
    return task
  }

  #finish (task: SimTask): void {
    task.completeTime = Date.now()
    if (task.failWith !== null) {
      task.state = 'failed'
      task.successFlag = 3
      task.errorMessage = task.failWith
    } else {
      const hex = newId()
      const names = task.type === 'upscale' ? [`${hex}_0_0.png`] : [0, 1, 2, 3].map((i) => `${hex}_0_${i}.png`)
      for (const name of names) this.#files.add(name)
      task.resultUrls = names.map((name) => `${this.publicUrl}/files/${name}`)
      task.state = 'success'
      task.successFlag = 1
    }
    this.#log.info({ taskId: task.id, state: task.state }, 'simulator: task finished')
    if (task.callBackUrl !== null) this.#dispatcher.deliver(task.id, task.callBackUrl, callbackPayload(task))
  }
}
