import type { CallbackPayload, RecordInfo } from './schemas.js'
import type { SimTask } from './state.js'

/** The callback body, in exactly the shape the kie.ai docs show. */
export function callbackPayload (task: SimTask): CallbackPayload {
  const data = { taskId: task.id, promptJson: task.paramJson }
  return task.state === 'success'
    ? { code: 200, msg: 'success', data: { ...data, resultUrls: [...task.resultUrls] } }
    : { code: 500, msg: task.errorMessage ?? 'Generation failed', data: { ...data, resultUrls: [] } }
}

export function toRecordInfo (task: SimTask): RecordInfo {
  const generating = task.state === 'generating'
  return {
    taskId: task.id,
    taskType: task.taskType,
    paramJson: task.paramJson,
    resultInfoJson: generating ? null : { resultUrls: task.resultUrls.map((resultUrl) => ({ resultUrl })) },
    successFlag: task.successFlag,
    errorCode: task.state === 'failed' ? 500 : null,
    errorMessage: task.errorMessage,
    createTime: new Date(task.createTime).toISOString(),
    completeTime: task.completeTime === null ? null : new Date(task.completeTime).toISOString()
  }
}
