import type { Outcome } from '../db/repository.js'
import type { RecordInfo } from './client.js'

export type RecordState =
  | { final: true; outcome: Outcome; completedAt: number | null }
  | { final: false; state: 'generating' }

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null

/** kie.ai's times: ISO-8601, "YYYY-MM-DD HH:mm:ss" (taken as UTC) or epoch milliseconds. */
export function parseKieTime(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value !== 'string' || value.trim() === '') return null
  const v = value.trim()
  if (/^\d{10,}$/.test(v)) return Number(v)
  const plain = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$/.exec(v)
  const ms = Date.parse(plain ? `${plain[1]}T${plain[2]}Z` : v)
  return Number.isNaN(ms) ? null : ms
}

/** resultInfoJson comes as an object or as a JSON string; its URLs as `{resultUrl}` objects or strings. */
export function resultUrlsOf(resultInfoJson: unknown): string[] {
  let info = resultInfoJson
  if (typeof info === 'string') {
    try {
      info = JSON.parse(info)
    } catch {
      return []
    }
  }
  const list = isObj(info) ? info.resultUrls : undefined
  if (!Array.isArray(list)) return []
  return list
    .map((u) => (typeof u === 'string' ? u : isObj(u) && typeof u.resultUrl === 'string' ? u.resultUrl : null))
    .filter((u): u is string => u !== null && /^https?:\/\//.test(u))
}

/** successFlag: 0 generating, 1 success, 2 failed, 3 generation failed. */
export function readRecordInfo(r: RecordInfo): RecordState {
  if (r.successFlag === 0) return { final: false, state: 'generating' }
  const completedAt = parseKieTime(r.completeTime)
  if (r.successFlag === 1) {
    const urls = resultUrlsOf(r.resultInfoJson)
    if (urls.length > 0) return { final: true, outcome: { status: 'succeeded', resultUrls: urls }, completedAt }
    return { final: true, outcome: { status: 'failed', code: 'GW_UPSTREAM_FAILED', message: 'kie.ai reported success without any result URL' }, completedAt }
  }
  const message = r.errorMessage || `kie.ai reported the task failed (successFlag ${r.successFlag})`
  return { final: true, outcome: { status: 'failed', code: 'GW_UPSTREAM_FAILED', message }, completedAt }
}
