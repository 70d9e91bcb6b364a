import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Repository } from './db/repository.js'
import type { KieClient, KieResult } from './kie/client.js'
import type { TaskType } from './tasks/schemas.js'

/**
 * Prometheus metrics. Nothing scans a table on a scrape: task counts come from four rows that
 * triggers keep; queue depth counts the queue's own partial index.
 */
export function createMetrics(repo: Repository) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  new Gauge({
    name: 'gateway_tasks',
    help: 'Tasks by status',
    labelNames: ['status'],
    registers,
    collect() {
      for (const { status, n } of repo.statusCounts()) this.set({ status }, n)
    }
  })
  new Gauge({
    name: 'gateway_tasks_by_type',
    help: 'Tasks by kind (generate, vary, upscale) and status',
    labelNames: ['type', 'status'],
    registers,
    collect() {
      for (const { type, status, n } of repo.tasks.counts()) this.set({ type, status }, n)
    }
  })
  new Gauge({
    name: 'gateway_queue_depth',
    help: 'Tasks waiting to be sent to kie.ai',
    registers,
    collect() {
      this.set(repo.queueDepth())
    }
  })
  const m = {
    registry,
    submissions: new Counter({ name: 'gateway_kie_submissions_total', help: 'Submissions to kie.ai by outcome', labelNames: ['outcome'], registers }),
    submissionsByKind: new Counter({
      name: 'gateway_kie_submissions_by_kind_total',
      help: 'Submissions to kie.ai by kind (generate, vary, upscale) and outcome',
      labelNames: ['kind', 'outcome'],
      registers
    }),
    kieLatency: new Histogram({
      name: 'gateway_kie_request_duration_seconds',
      help: 'kie.ai call latency by endpoint',
      labelNames: ['endpoint'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20],
      registers
    }),
    pacingWait: new Histogram({
      name: 'gateway_pacing_wait_seconds',
      help: 'Time from a task arriving to its (first) send to kie.ai',
      buckets: [0.01, 0.1, 1, 5, 10, 30, 60, 300, 1800],
      registers
    }),
    callbacks: new Counter({ name: 'gateway_callbacks_total', help: 'kie.ai callbacks received by verdict', labelNames: ['verdict'], registers }),
    reconcilePolls: new Counter({ name: 'gateway_reconcile_polls_total', help: 'record-info polls by result', labelNames: ['result'], registers }),
    webhooks: new Counter({ name: 'gateway_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome', labelNames: ['outcome'], registers }),
    duplicateUpstreamTasks: new Counter({
      name: 'gateway_duplicate_upstream_tasks_total',
      help: 'Callbacks for a second kie.ai task of one gateway task (kie.ai billed twice)',
      registers
    }),
    kieCredits: new Gauge({ name: 'gateway_kie_credits', help: "kie.ai account's remaining credits, as last asked", registers })
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>

/** The kie.ai client, timed per endpoint and with submission outcomes counted. */
export function instrumentKie(kie: KieClient, metrics: Metrics): KieClient {
  async function submission(kind: TaskType, endpoint: string, call: () => Promise<KieResult<{ taskId: string }>>) {
    const end = metrics.kieLatency.startTimer({ endpoint })
    const result = await call()
    end()
    const outcome = result.ok ? 'accepted' : result.kind === 'rejected' ? `rejected_${result.code}` : `transient_${result.reason}`
    metrics.submissions.inc({ outcome })
    metrics.submissionsByKind.inc({ kind, outcome })
    return result
  }
  return {
    generateUpscale: (req, abort) => submission('upscale', 'generateUpscale', () => kie.generateUpscale(req, abort)),
    generateVary: (req, abort) => submission('vary', 'generateVary', () => kie.generateVary(req, abort)),
    generate: (req, abort) => submission('generate', 'generate', () => kie.generate(req, abort)),
    downloadUrl: (url) => kie.downloadUrl(url),
    async credits() {
      const result = await kie.credits()
      if (result.ok) metrics.kieCredits.set(result.data)
      return result
    },
    async recordInfo(kieTaskId, abort) {
      const end = metrics.kieLatency.startTimer({ endpoint: 'recordInfo' })
      try {
        return await kie.recordInfo(kieTaskId, abort)
      } finally {
        end()
      }
    }
  }
}
