import { Type, type Static } from '@sinclair/typebox'
import type { Outcome } from '../db/repository.js'
import { readCode } from './answers.js'

/**
 * record-info's `data`. Every field is taken as kie.ai may send it (a flag as a number or a
 * string, times in four forms, resultInfoJson as an object or a string) and read below.
 */
export const RecordInfoSchema = Type.Object({
  taskId: Type.Optional(Type.Unknown()),
  successFlag: Type.Optional(Type.Unknown()),
  resultInfoJson: Type.Optional(Type.Unknown()),
  errorCode: Type.Optional(Type.Unknown()),
  errorMessage: Type.Optional(Type.Unknown()),
  createTime: Type.Optional(Type.Unknown()),
  completeTime: Type.Optional(Type.Unknown())
})
export type RecordInfo = Static<typeof RecordInfoSchema>

export type RecordState =
  | { final: true; outcome: Outcome; completedAt: number | null }
  | { final: false; state: 'generating' | 'unknown' }

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
// Below this a number is epoch seconds (1e11 s is the year 5138; 1e11 ms is 1973).
const SECONDS_BELOW = 1e11

/** kie.ai's times: ISO-8601, "YYYY-MM-DD HH:mm:ss" (taken as UTC), epoch milliseconds or epoch seconds. */
export function parseKieTime(value: unknown): number | null {
  const epoch = (n: number) => (n > 0 ? (n < SECONDS_BELOW ? Math.round(n * 1000) : Math.round(n)) : null)
  if (typeof value === 'number') return Number.isFinite(value) ? epoch(value) : null
  if (typeof value !== 'string' || value.trim() === '') return null
  const v = value.trim()
  if (/^\d{9,}(\.\d+)?$/.test(v)) return epoch(Number(v))
  const plain = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/.exec(v)
  const ms = Date.parse(plain ? `${plain[1]}T${plain[2]}Z` : v)
  return Number.isNaN(ms) ? null : ms
}

const isHttpUrl = (u: unknown): u is string => typeof u === 'string' && /^https?:\/\/[^\s]+$/.test(u) && URL.canParse(u)

/**
 * Result URLs from a list of strings or of `{resultUrl}` objects. Null when any entry cannot
 * be read: a partly readable list is not a certain answer.
 */
export function readUrlList(list: unknown): string[] | null {
  if (!Array.isArray(list)) return null
  const urls = list.map((u) => (isHttpUrl(u) ? u : isObj(u) && isHttpUrl(u.resultUrl) ? u.resultUrl : null))
  return urls.every((u): u is string => u !== null) ? urls : null
}

/** resultInfoJson comes as an object or as a JSON string holding `resultUrls`. */
export function resultUrlsOf(resultInfoJson: unknown): string[] | null {
  let info = resultInfoJson
  if (typeof info === 'string') {
    try {
      info = JSON.parse(info)
    } catch {
      return null
    }
  }
  return isObj(info) ? readUrlList(info.resultUrls) : null
}

/**
 * successFlag (a number or a numeric string): 0 generating, 1 success, 2 failed, 3 generation
 * failed. Anything else, or a success without a readable URL, is not final: keep asking.
 */
export function readRecordInfo(r: RecordInfo | null): RecordState {
  if (!isObj(r)) return { final: false, state: 'unknown' }
  const flag = readCode(r.successFlag)
  if (flag === 0) return { final: false, state: 'generating' }
  const completedAt = parseKieTime(r.completeTime)
  if (flag === 1) {
    const urls = resultUrlsOf(r.resultInfoJson)
    if (urls !== null && urls.length > 0) return { final: true, outcome: { status: 'succeeded', resultUrls: urls }, completedAt }
    return { final: false, state: 'unknown' }
  }
  if (flag === 2 || flag === 3) {
    const message = typeof r.errorMessage === 'string' && r.errorMessage !== '' ? r.errorMessage.toWellFormed() : `kie.ai reported the task failed (successFlag ${flag})`
    return { final: true, outcome: { status: 'failed', code: 'GW_UPSTREAM_FAILED', message }, completedAt }
  }
  return { final: false, state: 'unknown' }
}
