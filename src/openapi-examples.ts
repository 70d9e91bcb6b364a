// Examples shown in the OpenAPI document; a test checks each against its own schema.
const id = '50df5987-fd9d-4b79-9e6c-8256c1962747'
const parent = 'ea8f7c64c4ae87b48b8f12b2e3ba42f6'

export const taskExample = {
  id,
  type: 'upscale',
  status: 'succeeded',
  parentId: null,
  taskId: parent,
  imageIndex: 2,
  params: { taskId: parent, imageIndex: 2 },
  waterMark: null,
  kieTaskId: '7c04a036a284cf7f3b8c18aa2bdafa40',
  callbackUrl: 'https://hooks.example.com/upscales',
  resultUrls: ['https://tempfile.aiquickdraw.com/v/7c04a036a284cf7f3b8c18aa2bdafa40_0_0.jpeg'],
  error: null,
  createdAt: '2026-11-25T14:16:48.263Z',
  updatedAt: '2026-11-25T14:16:51.312Z',
  completedAt: '2026-11-25T14:16:51.312Z',
  archive: {
    status: 'stored',
    bytes: 183442,
    sha256: '9f2c1e5a7b3d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6',
    contentType: 'image/jpeg',
    url: '/upscale/50df5987-fd9d-4b79-9e6c-8256c1962747/result',
    error: null,
    files: [
      {
        index: 0,
        status: 'stored',
        bytes: 183442,
        sha256: '9f2c1e5a7b3d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6',
        contentType: 'image/jpeg',
        url: '/upscale/50df5987-fd9d-4b79-9e6c-8256c1962747/result'
      }
    ]
  },
  queue: null
}

export const queuedTaskExample = {
  ...taskExample,
  status: 'queued',
  kieTaskId: null,
  resultUrls: null,
  updatedAt: '2026-11-25T14:16:48.263Z',
  completedAt: null,
  archive: null,
  queue: { position: 3, estimatedSendAt: '2026-11-25T14:16:59.000Z', waitingFor: null }
}

export const createUpscaleExample = { taskId: parent, imageIndex: 2, callbackUrl: 'https://hooks.example.com/upscales' }

export const errorExample = {
  statusCode: 400,
  error: 'Bad Request',
  code: 'GW_VALIDATION',
  message: 'body.imageIndex: expected integer'
}

export const deliveriesExample = {
  items: [
    {
      id: 'msg_2f1d0c6b8a9e4f3d8c7b6a5f4e3d2c1b',
      type: 'upscale.succeeded',
      url: 'https://hooks.example.com/upscales',
      state: 'delivered',
      createdAt: '2026-11-25T14:16:51.312Z',
      nextAttemptAt: null,
      attempts: [
        { at: '2026-11-25T14:16:51.320Z', statusCode: 500, durationMs: 41, error: null },
        { at: '2026-11-25T14:16:56.402Z', statusCode: 200, durationMs: 37, error: null }
      ]
    }
  ]
}

export const kieCallbackExample = {
  code: 200,
  msg: 'success',
  data: {
    taskId: '7c04a036a284cf7f3b8c18aa2bdafa40',
    promptJson: '{"taskId":"ea8f7c64c4ae87b48b8f12b2e3ba42f6","imageIndex":2}',
    resultUrls: ['https://tempfile.aiquickdraw.com/v/7c04a036a284cf7f3b8c18aa2bdafa40_0_0.jpeg']
  }
}

// The admin API (ADMIN_API_KEYS).
export const adminOverviewExample = {
  queue: { depth: 3, nextSendAt: '2026-11-25T14:16:59.000Z', window: { used: 20, max: 20, windowMs: 10500 } },
  breaker: { state: 'closed', openUntil: null },
  credits: { balance: 1843.5, checkedAt: '2026-11-25T14:15:00.000Z' },
  tasks: { queued: 3, submitted: 12, succeeded: 4210, failed: 37 },
  refusedCallbacks: { sinceMs: 3_600_000, byVerdict: [{ verdict: 'bad_token', count: 14 }, { verdict: 'signature_invalid', count: 2 }] }
}

export const adminTaskSummaryExample = {
  id: '8a1c3f0e-5b7d-4e2a-9c6f-1d2e3f4a5b6c',
  type: 'generate',
  status: 'succeeded',
  client: 'name:billing',
  kieTaskId: '0364da85079e0b8554778a0aa31428f2',
  prompt: 'a lighthouse at dusk',
  waterMark: null,
  errorCode: null,
  createdAt: '2026-11-25T14:16:48.263Z',
  updatedAt: '2026-11-25T14:16:51.312Z'
}

export const adminTaskExample = { ...taskExample, client: 'name:billing' }

export const adminTaskDetailExample = {
  task: adminTaskExample,
  timeline: [
    { at: '2026-11-25T14:16:48.263Z', from: null, to: 'queued', source: 'create' },
    { at: '2026-11-25T14:16:48.263Z', from: 'queued', to: 'submitted', source: 'submit' },
    { at: '2026-11-25T14:16:51.312Z', from: 'submitted', to: 'succeeded', source: 'callback' }
  ],
  callbacks: [
    {
      id: 812,
      receivedAt: '2026-11-25T14:16:51.300Z',
      verdict: 'accepted',
      httpStatus: 200,
      contentType: 'application/json',
      remoteAddress: '203.0.113.7',
      signed: true,
      body: JSON.stringify(kieCallbackExample),
      bodyBytes: 231,
      bodySha256: '5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592'
    }
  ],
  deliveries: deliveriesExample.items,
  files: [
    {
      index: 0,
      status: 'stored',
      bytes: 183442,
      contentType: 'image/jpeg',
      error: null,
      imageUrl: `/admin/tasks/${id}/files/0`,
      thumbnailUrl: `/admin/tasks/${id}/files/0/thumbnail`
    }
  ]
}
