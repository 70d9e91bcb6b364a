import { randomBytes } from 'node:crypto'
import { buildApp, type AppOptions } from '../src/app.js'
import type { Clock } from '../src/clock.js'
import { openDatabase } from '../src/db/open.js'
import { createRepository } from '../src/db/repository.js'
import type { KieClient, KieResult, RecordInfo, UpscaleRequest } from '../src/kie/client.js'
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

export async function buildTestApp(opts: Partial<AppOptions> & { dbPath?: string } = {}) {
  const db = opts.db ?? openDatabase(opts.dbPath ?? ':memory:')
  const kie = (opts.kie as FakeKie | undefined) ?? new FakeKie()
  const clock = (opts.clock as FakeClock | undefined) ?? new FakeClock()
  const app = await buildApp({
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
  return { app, db, kie: kie as FakeKie, clock: clock as FakeClock, repo: createRepository(db) }
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
