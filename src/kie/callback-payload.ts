import { toWellFormed } from '../tasks/view.js'

export type ParsedCallback =
  | { ok: true; kieTaskId: string; code: number; msg: string; resultUrls: string[] }
  | { ok: false; reason: string }

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128

/** Reads kie.ai's completion callback, tolerating the shapes its pages disagree on. */
export function parseCallback(raw: string): ParsedCallback {
  let body: unknown
  try {
    body = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'is not valid JSON' }
  }
  if (!isObj(body)) return { ok: false, reason: 'must be a JSON object' }
  const data = isObj(body.data) ? body.data : {}
  // Where the task id sits differs between kie.ai's pages: data.taskId, then taskId, then data.task_id.
  const kieTaskId = [data.taskId, body.taskId, data.task_id].find(nonEmpty)
  if (!kieTaskId) return { ok: false, reason: 'data.taskId is missing' }
  if (typeof body.code !== 'number') return { ok: false, reason: 'code must be a number' }
  const urls = data.resultUrls ?? []
  if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string' && /^https?:\/\//.test(u))) {
    return { ok: false, reason: 'data.resultUrls must be a list of http(s) URLs' }
  }
  // kie.ai's message is stored and shown; lone surrogates would not survive SQLite intact.
  const msg = typeof body.msg === 'string' ? toWellFormed(body.msg) : ''
  return { ok: true, kieTaskId, code: body.code, msg, resultUrls: urls as string[] }
}
