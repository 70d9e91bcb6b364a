import { readCode } from './answers.js'
import { readUrlList, resultUrlsOf } from './record-info.js'

/**
 * What a completion callback says, as far as it can be read with certainty. `unclear` settles
 * nothing: the task is reconciled through record-info instead.
 */
export type ParsedCallback = { kieTaskId: string | null } & (
  | { reading: 'succeeded'; resultUrls: string[] }
  | { reading: 'failed'; code: number; msg: string }
  | { reading: 'unclear'; why: string }
)

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const taskIdLike = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128

/** Reads kie.ai's completion callback in every shape ../shared/kie-api.md lists. */
export function parseCallback(raw: string): ParsedCallback {
  let body: unknown
  try {
    body = JSON.parse(raw)
  } catch {
    return { kieTaskId: null, reading: 'unclear', why: 'the body is not valid JSON' }
  }
  if (!isObj(body)) return { kieTaskId: null, reading: 'unclear', why: 'the body is not a JSON object' }
  const data = isObj(body.data) ? body.data : {}
  // Where the task id sits differs between kie.ai's pages: data.taskId, then taskId, then data.task_id.
  const kieTaskId = [data.taskId, body.taskId, data.task_id].find(taskIdLike) ?? null
  if (kieTaskId === null) return { kieTaskId, reading: 'unclear', why: 'no kie.ai task id in data.taskId, taskId or data.task_id' }
  const code = readCode(body.code)
  if (code === null) return { kieTaskId, reading: 'unclear', why: '`code` is missing or not a number' }
  if (code !== 200) {
    // kie.ai's message is stored and shown; lone surrogates would not survive SQLite intact.
    const msg = typeof body.msg === 'string' ? body.msg.toWellFormed() : ''
    return { kieTaskId, reading: 'failed', code, msg }
  }
  // data.resultUrls (strings or {resultUrl} objects), else data.resultInfoJson (an object or a JSON string).
  const listed = readUrlList(data.resultUrls)
  const urls = listed !== null && listed.length > 0 ? listed : resultUrlsOf(data.resultInfoJson)
  if (urls === null || urls.length === 0) return { kieTaskId, reading: 'unclear', why: 'a success without a readable result URL' }
  return { kieTaskId, reading: 'succeeded', resultUrls: urls }
}
