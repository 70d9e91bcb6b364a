import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import { afterAll, afterEach, beforeEach } from 'vitest'
import { buildApp, type App, type AppOptions } from '../src/app.js'
import type { Clock } from '../src/clock.js'
import { openDatabase } from '../src/db/open.js'
import type { GenerateRequest, KieClient, KieResult, RecordInfo, UpscaleRequest } from '../src/kie/client.js'
import { callbackToken } from '../src/kie/callback-token.js'

export const KEY_A = 'test-key-aaaaaaaaaaaaaaaa'
export const KEY_B = 'test-key-bbbbbbbbbbbbbbbb'
export const CALLBACK_SECRET = 'test-callback-secret-0123456789abcdef'
export const auth = (key = KEY_A) => ({ authorization: `Bearer ${key}` })
export const hex32 = () => randomBytes(16).toString('hex')

/** A scripted stand-in for kie.ai: answers from `next`, else accepts with a fresh id. */
export class FakeKie implements KieClient {
  upscaleCalls: UpscaleRequest[] = []
  next: Array<KieResult<{ taskId: string }> | Error> = []
  records = new Map<string, KieResult<RecordInfo | null>>()

  async generateUpscale(req: UpscaleRequest): Promise<KieResult<{ taskId: string }>> {
    this.upscaleCalls.push(req)
    return this.answer()
  }

  /** generate and generateVary calls, in order, with the endpoint they went to. */
  gridCalls: Array<{ endpoint: 'generate' | 'generateVary'; body: GenerateRequest | UpscaleRequest }> = []
  async generate(req: GenerateRequest): Promise<KieResult<{ taskId: string }>> {
    this.gridCalls.push({ endpoint: 'generate', body: req })
    return this.answer()
  }

  async generateVary(req: UpscaleRequest): Promise<KieResult<{ taskId: string }>> {
    this.gridCalls.push({ endpoint: 'generateVary', body: req })
    return this.answer()
  }

  private answer(): KieResult<{ taskId: string }> {
    const answer = this.next.shift()
    if (answer instanceof Error) throw answer
    return answer ?? { ok: true, data: { taskId: hex32() } }
  }

  links = new Map<string, string>()
  async downloadUrl(url: string): Promise<KieResult<string>> {
    const link = this.links.get(url)
    return link ? { ok: true, data: link } : { ok: false, kind: 'rejected', code: 422, msg: 'not a kie.ai url', httpStatus: 200 }
  }

  balance: KieResult<number> = { ok: true, data: 1000 }
  creditCalls = 0
  async credits(): Promise<KieResult<number>> {
    this.creditCalls++
    return this.balance
  }

  async recordInfo(kieTaskId: string): Promise<KieResult<RecordInfo | null>> {
    return this.records.get(kieTaskId) ?? { ok: false, kind: 'rejected', code: 422, msg: 'recordInfo is null', httpStatus: 200 }
  }
}

export class FakeClock implements Clock {
  constructor(public t = Date.parse('2026-11-25T12:00:00Z')) {}
  now = () => this.t
  advance(ms: number) {
    this.t += ms
  }
}

// ------------------------------------------------------------------------------ cleanup
//
// Everything a test starts (apps, databases, servers, folders) is closed here, in one place:
// this module registers the hooks in every test file that imports it. What a test (or its
// beforeEach) starts is closed after that test; what a beforeAll starts, after the file.
// Last started, first closed: a gateway before the simulator it talks to, before its folder.
// (vitest runs afterEach hooks in reverse order, so these run after a file's own.)

type Cleanup = () => Promise<unknown> | unknown
const afterTest: Cleanup[] = []
const afterFile: Cleanup[] = []
let inTest = false

async function runAll(list: Cleanup[]) {
  const errors: unknown[] = []
  for (const close of list.splice(0).reverse()) {
    try {
      await close()
    } catch (err) {
      errors.push(err) // the rest is still closed
    }
  }
  if (errors.length > 0) throw errors[0]
}

beforeEach(() => {
  inTest = true
})
afterEach(async () => {
  inTest = false
  await closeAll()
})
afterAll(() => runAll(afterFile))

/** Closes `close` after the current test, or after the file when called from a beforeAll. */
export function onCleanup(close: Cleanup): void {
  ;(inTest ? afterTest : afterFile).push(close)
}

/** Closes everything the current test started (the shared afterEach calls it). */
export const closeAll = () => runAll(afterTest)

/** Closes a loopback server a test started, its open connections too. */
export const closeServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

/** Runs `close` once, however often it is called: by a test that restarts, then by the cleanup. */
const once = (close: () => Promise<void>) => {
  let closing: Promise<void> | null = null
  return () => (closing ??= close())
}

/**
 * The app with a scripted kie.ai, a clock that moves only when told, and no background workers;
 * any option overrides (test/e2e-helper.ts's startGateway builds the real thing on it). The
 * repository returned is the app's own, so what a test writes goes through the same hooks as
 * the app's writes. The app and its database are closed after the test (see onCleanup);
 * `close()` closes them earlier, for a restart.
 */
export async function buildTestApp(opts: Partial<AppOptions> & { dbPath?: string; routes?: (app: App) => void } = {}) {
  const db = opts.db ?? openDatabase(opts.dbPath ?? ':memory:')
  const kie = (opts.kie as FakeKie | undefined) ?? new FakeKie()
  const clock = (opts.clock as FakeClock | undefined) ?? new FakeClock()
  let app: Awaited<ReturnType<typeof buildApp>>
  try {
    app = await buildApp({
      db,
      kie,
      clock,
      apiKeys: [KEY_A, KEY_B],
      publicBaseUrl: 'http://gateway.test',
      callbackSecret: CALLBACK_SECRET,
      workers: false,
      random: () => 0.5,
      ...opts
    })
    // Routes a test adds of its own must come before ready.
    opts.routes?.(app)
    // Ready as a served app is: start-up recovery has run (and, with workers on, the workers).
    await app.ready()
  } catch (err) {
    db.close()
    throw err
  }
  const close = once(async () => {
    await app.close()
    db.close()
  })
  onCleanup(close)
  return { app, db, kie: kie as FakeKie, clock: clock as FakeClock, repo: app.services.repo, close }
}

/** The callback URL query the gateway hands kie.ai for a task. */
export const callbackQuery = (taskId: string, secret = CALLBACK_SECRET) =>
  `task=${encodeURIComponent(taskId)}&token=${callbackToken(secret, taskId)}`

/** kie.ai's documented success callback. */
export const successCallback = (kieTaskId: string, urls = [`https://tempfile.aiquickdraw.com/v/${kieTaskId}_0_0.jpeg`]) => ({
  code: 200,
  msg: 'success',
  data: { taskId: kieTaskId, promptJson: '{"taskId":"parent","index":0}', resultUrls: urls }
})

export const failureCallback = (kieTaskId: string, msg = 'Generation failed: moderation') => ({
  code: 500,
  msg,
  data: { taskId: kieTaskId, promptJson: '{}', resultUrls: [] }
})
