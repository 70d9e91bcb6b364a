import type { Logger } from 'pino'
import { Value } from '@sinclair/typebox/value'
import { classify, networkFailure, type KieResult } from './answers.js'
import { RecordInfoSchema } from './record-info.js'

export type { KieResult, KieFailure, TransientReason } from './answers.js'
export { classify } from './answers.js'

/** generateUpscale and generateVary: one image of a finished grid. */
export interface UpscaleRequest {
  taskId: string
  imageIndex: number
  waterMark?: string | undefined
  callBackUrl: string
}

/** generate: kie.ai's parameters as the client submitted them, with the gateway's callback URL. */
export type GenerateRequest = Record<string, unknown> & { callBackUrl: string }

import type { RecordInfo } from './record-info.js'
export type { RecordInfo } from './record-info.js'

export interface KieClient {
  /** `abort` ends the request early (shutdown); its outcome is then unknown. */
  generateUpscale(req: UpscaleRequest, abort?: AbortSignal): Promise<KieResult<{ taskId: string }>>
  generateVary(req: UpscaleRequest, abort?: AbortSignal): Promise<KieResult<{ taskId: string }>>
  generate(req: GenerateRequest, abort?: AbortSignal): Promise<KieResult<{ taskId: string }>>
  /** `data` null: kie.ai does not know the task's state yet. */
  recordInfo(kieTaskId: string, abort?: AbortSignal): Promise<KieResult<RecordInfo | null>>
  /** A temporary (20 minute) direct link to one of kie.ai's result files. */
  downloadUrl(url: string): Promise<KieResult<string>>
  /** The account's remaining credits. */
  credits(): Promise<KieResult<number>>
}

export interface KieClientOptions {
  baseUrl: string
  apiKey: string
  timeoutMs: number
  log?: Logger | undefined
}

function parseRetryAfter(header: string | null): number | null {
  if (!header) return null
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(header)
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now())
}

const hasTaskId = (d: unknown): d is { taskId: string } =>
  typeof d === 'object' && d !== null && typeof (d as { taskId?: unknown }).taskId === 'string' && (d as { taskId: string }).taskId.length > 0
const isLink = (d: unknown): d is string => typeof d === 'string' && /^https?:\/\//.test(d)
const isRecord = (d: unknown): d is RecordInfo | null => d === null || d === undefined || Value.Check(RecordInfoSchema, d)
const isCredits = (d: unknown): d is number => typeof d === 'number' && Number.isFinite(d)

export function createKieClient(opts: KieClientOptions): KieClient {
  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    hasData: (d: unknown) => d is T,
    abort: AbortSignal | undefined
  ): Promise<KieResult<T>> {
    const started = performance.now()
    try {
      const res = await fetch(opts.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${opts.apiKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' })
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: abort ? AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), abort]) : AbortSignal.timeout(opts.timeoutMs),
        redirect: 'error'
      })
      const text = await res.text()
      const result = classify(res.status, text, parseRetryAfter(res.headers.get('retry-after')), hasData)
      opts.log?.debug({ path, httpStatus: res.status, ok: result.ok, ms: Math.round(performance.now() - started) }, 'kie.ai call')
      return result
    } catch (err) {
      const { code, ...failure } = networkFailure(err, method === 'POST', opts.timeoutMs)
      opts.log?.warn({ path, code, reason: failure.reason, ms: Math.round(performance.now() - started) }, 'kie.ai call failed')
      return failure
    }
  }

  return {
    generateUpscale: (req, abort) => call('POST', '/api/v1/mj/generateUpscale', req, hasTaskId, abort),
    generateVary: (req, abort) => call('POST', '/api/v1/mj/generateVary', req, hasTaskId, abort),
    generate: (req, abort) => call('POST', '/api/v1/mj/generate', req, hasTaskId, abort),
    downloadUrl: (url) => call('POST', '/api/v1/common/download-url', { url }, isLink, undefined),
    credits: () => call('GET', '/api/v1/chat/credit', undefined, isCredits, undefined),
    recordInfo: async (kieTaskId, abort) => {
      const r = await call('GET', `/api/v1/mj/record-info?taskId=${encodeURIComponent(kieTaskId)}`, undefined, isRecord, abort)
      return r.ok ? { ok: true, data: r.data ?? null } : r
    }
  }
}
