// A quick ratio while working on one path: node dist/bench/compare.js [final|running|tasks|list|reference] [seconds]
// Alternates the bare Fastify route and the gateway route at 10 and at 50 connections, three
// rounds each, and prints the median ratio; both arms are sent the same 1,000 requests (autocannon
// builds each once per connection). Not the record (that is npm run bench).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseClientKey } from '../src/plugins/client-auth.js'
import { API_KEY, cpuSeconds, forkServer, killAll, startGateway } from './lib/children.js'
import { load, type LoadRequest } from './lib/load.js'
import { seedTasks } from './lib/seed.js'

const what = process.argv[2] ?? 'final'
const seconds = Number(process.argv[3] ?? 2)
const dir = mkdtempSync(join(tmpdir(), 'gw-cmp-'))
const owner = parseClientKey(API_KEY).clientId
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number

try {
  const dbPath = join(dir, 'gw.db')
  const { sample } = seedTasks(dbPath, 10_000, { owner, status: what === 'running' ? 'submitted' : 'succeeded', sampleEvery: 10 })
  // 'reference': the straightforward status route (bench/servers/reference.ts) instead of the gateway.
  const gw = what === 'reference'
    ? await (async () => {
      const ref = await forkServer<{ port: number }>('reference', { DB: dbPath, LOG: join(dir, 'ref.log'), KEY: API_KEY, OWNER: owner })
      return { url: `http://127.0.0.1:${ref.ready.port}`, pid: ref.child.pid as number, stop: ref.stop }
    })()
    : await startGateway({ dbPath, logFile: join(dir, 'gw.log') })
  const bare = await forkServer<{ port: number }>('bare-fastify')
  const bareUrl = `http://127.0.0.1:${bare.ready.port}`
  const barePid = bare.child.pid as number
  const requests: LoadRequest[] = what === 'list'
    ? [{ path: '/tasks?limit=20' }]
    : sample.map((t) => ({ path: what === 'tasks' ? `/tasks/${t.id}` : `/upscale/${t.id}` }))
  const headers = { authorization: `Bearer ${API_KEY}` }
  for (const connections of [10, 50]) {
    await load({ url: gw.url, seconds: 1, connections, headers, requests })
    await load({ url: bareUrl, seconds: 1, connections, headers, requests })
    const ratios: number[] = []
    const rates: number[] = []
    const cpu: number[] = []
    const bareCpu: number[] = []
    for (let round = 0; round < 3; round++) {
      let c0 = cpuSeconds(barePid)
      const b = await load({ url: bareUrl, seconds, connections, headers, requests })
      bareCpu.push((cpuSeconds(barePid) - c0) / b.requests)
      c0 = cpuSeconds(gw.pid)
      const g = await load({ url: gw.url, seconds, connections, headers, requests })
      cpu.push((cpuSeconds(gw.pid) - c0) / g.requests)
      if (g.non2xx > 0 || g.errors > 0) throw new Error(`${g.non2xx} non-2xx, ${g.errors} errors`)
      ratios.push(g.rps / b.rps)
      rates.push(g.rps)
    }
    process.stdout.write(`${what} at ${connections} connections: ${Math.round(median(rates))} req/s, ratio ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(3)).join(', ')}); server CPU per request ${Math.round(median(cpu) * 1e6)} µs, bare ${Math.round(median(bareCpu) * 1e6)} µs\n`)
  }
  await bare.stop()
  await gw.stop()
} finally {
  killAll()
  rmSync(dir, { recursive: true, force: true })
}
