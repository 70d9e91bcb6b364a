import type { RecordInfo } from './schemas.js'
import type { SimTask } from './types.js'
import { formatTime, type CallbackShape, type Variants } from './variants.js'

type ResultInfo = { resultUrls: Array<{ resultUrl: string }> }
interface Outcome { taskId: string, promptJson: string }

/** Every callback body the simulator can send, one per Variants['callbackShape']. */
export type CallbackBody =
  | { code: number | string, msg: string, data: Outcome & { resultUrls: string[] | ResultInfo['resultUrls'] } }
  | { code: number, msg: string, data: Outcome & { resultInfoJson: ResultInfo | string } }
  | { taskId: string, code: number, msg: string,
    data: { task_id: string, callbackType: 'task_completed' | 'task_failed', promptJson: string } }

/** The callback body in the shape asked for; 'documented' is exactly what the kie.ai docs show. */
export function callbackPayload(task: SimTask, shape: CallbackShape = 'documented'): CallbackBody {
  const success = task.state === 'success'
  const code = success ? 200 : 500
  const msg = success ? 'success' : task.errorMessage ?? 'Generation failed'
  const data = { taskId: task.id, promptJson: task.promptJson }
  const urls = success ? [...task.resultUrls] : []
  const resultInfo: ResultInfo = { resultUrls: urls.map((resultUrl) => ({ resultUrl })) }
  switch (shape) {
    case 'documented': return { code, msg, data: { ...data, resultUrls: urls } }
    case 'codeString': return { code: String(code), msg, data: { ...data, resultUrls: urls } }
    case 'urlObjects': return { code, msg, data: { ...data, resultUrls: resultInfo.resultUrls } }
    case 'resultInfoJsonObject': return { code, msg, data: { ...data, resultInfoJson: resultInfo } }
    case 'resultInfoJsonString': return { code, msg, data: { ...data, resultInfoJson: JSON.stringify(resultInfo) } }
    case 'verification': return {
      taskId: task.id,
      code,
      msg: success ? 'Success' : msg,
      data: { task_id: task.id, callbackType: success ? 'task_completed' : 'task_failed', promptJson: task.promptJson }
    }
  }
}

/** What record-info knows of a task, before the chaos switches and the wire format (variants) apply. */
export interface RecordState {
  taskId: string
  taskType: string
  paramJson: string
  /** null: no resultInfoJson yet */
  resultUrls: string[] | null
  successFlag: number
  errorCode: number | null
  errorMessage: string | null
  createTime: number
  completeTime: number | null
}

export function toRecordState(task: SimTask): RecordState {
  return {
    taskId: task.id,
    taskType: task.taskType,
    paramJson: task.paramJson,
    resultUrls: task.state === 'generating' ? null : [...task.resultUrls],
    successFlag: task.successFlag,
    errorCode: task.state === 'failed' ? 500 : null,
    errorMessage: task.errorMessage,
    createTime: task.createTime,
    completeTime: task.completeTime
  }
}

/** record-info's `data` as sent, in the forms the variants ask for; null when it is to be sent as null. */
export function presentRecordInfo(state: RecordState, v: Variants): RecordInfo | null {
  if (v.recordInfoNullWhileGenerating && state.successFlag === 0) return null
  const resultInfo = state.resultUrls === null ? null : { resultUrls: state.resultUrls.map((resultUrl) => ({ resultUrl })) }
  return {
    taskId: state.taskId,
    taskType: state.taskType,
    paramJson: state.paramJson,
    resultInfoJson: resultInfo !== null && v.recordInfoResultAsString ? JSON.stringify(resultInfo) : resultInfo,
    successFlag: v.successFlagAs === 'string' ? String(state.successFlag) : state.successFlag,
    errorCode: state.errorCode,
    errorMessage: state.errorMessage,
    createTime: formatTime(state.createTime, v.timeFormat),
    completeTime: state.completeTime === null ? null : formatTime(state.completeTime, v.timeFormat)
  }
}
