// The kie.ai simulator in its own process, driven over IPC by bench/run.ts.
import { startSimulator } from '../../src/simulator/index.js'
import { UPSCALE_PATH } from '../../src/simulator/calls.js'

const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback)

const running = await startSimulator({
  apiKey: process.env.SIM_API_KEY ?? 'bench-sim-key',
  host: '127.0.0.1',
  port: 0,
  rateLimitMax: env('SIM_RATE_LIMIT_MAX', 20),
  rateLimitWindowMs: env('SIM_RATE_LIMIT_WINDOW_MS', 10_000),
  // Nothing completes during a measurement: no callbacks compete with the load.
  completionDelayMs: 3_600_000,
  credits: 1_000_000_000,
  logger: false
})
const parents = Array.from({ length: env('SIM_PARENTS', 4) }, (_, i) => running.sim.createParentTask(`bench parent ${i}`))

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'calls') {
    const calls = running.sim.calls
      .filter((c) => c.method === 'POST' && c.path === UPSCALE_PATH)
      .map((c) => ({ at: c.at, httpStatus: c.httpStatus, code: c.code }))
    process.send?.({ type: 'calls', calls })
  } else if (msg.type === 'reset') {
    running.sim.calls.splice(0)
    process.send?.({ type: 'reset' })
  }
})
process.on('SIGTERM', () => void running.close().then(() => process.exit(0)))
process.send?.({ type: 'ready', url: running.url, parents })
