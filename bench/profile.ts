// Profiles the gateway child under one load: node dist/bench/profile.js status|callbacks|startup
// Writes a V8 .cpuprofile (open it in Chrome DevTools) and prints where the time goes.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { callbackToken } from '../src/kie/callback-token.js'
import { parseClientKey } from '../src/plugins/client-auth.js'
import { API_KEY, CALLBACK_SECRET, killAll, startGateway } from './lib/children.js'
import { load } from './lib/load.js'
import { seedTasks } from './lib/seed.js'

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }

/** Self and inclusive time per function, and self time per package/file. */
export function summarize(file: string, top = 25): string {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const total = prof.nodes.reduce((s, n) => s + n.hitCount, 0)
  const label = (n: Node) => {
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, '').replace(/.*\/dist\//, 'dist/')
    return `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim()
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const area = new Map<string, number>()
  const walk = (id: number, stack: Set<string>): number => {
    const n = byId.get(id) as Node
    const name = label(n)
    let sum = n.hitCount
    const nested = new Set(stack).add(name)
    for (const c of n.children ?? []) sum += walk(c, nested)
    self.set(name, (self.get(name) ?? 0) + n.hitCount)
    if (!stack.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + sum)
    const url = n.callFrame.url
    const where = url.includes('node_modules/')
      ? (/node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? 'node_modules')
      : url.includes('/dist/')
      ? url.replace(/.*\/dist\//, 'dist/')
      : url.startsWith('node:')
      ? 'node internals'
      : n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : 'native/other'
    area.set(where, (area.get(where) ?? 0) + n.hitCount)
    return sum
  }
  const root = prof.nodes[0] as Node
  walk(root.id, new Set())
  const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)}%`
  const list = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, v]) => `  ${pct(v)}  ${name}`).join('\n')
  return `samples: ${total}\n\nself time by package/file:\n${list(area, 15)}\n\nself time by function:\n${list(self, top)}\n\ninclusive time by function:\n${list(inclusive, top)}\n`
}

async function main() {
  const what = process.argv[2] ?? 'status'
  const dir = mkdtempSync(join(tmpdir(), 'gw-prof-'))
  process.env.BENCH_CPU_PROF = dir
  const owner = parseClientKey(API_KEY).clientId
  const seconds = Number(process.env.PROFILE_SECONDS ?? 8)
  const dbPath = join(dir, 'gw.db')
  if (what === 'status') {
    const { sample } = seedTasks(dbPath, 10_000, { owner, status: 'succeeded', sampleEvery: 1 })
    const gw = await startGateway({ dbPath, logFile: join(dir, 'gw.log') })
    const requests = sample.slice(0, 1000).map(({ id }) => ({ path: `${process.env.PROFILE_PREFIX ?? '/upscale'}/${id}` }))
    await load({ url: gw.url, seconds, connections: 50, headers: { authorization: `Bearer ${API_KEY}` }, requests })
    await gw.stop()
  } else if (what === 'callbacks') {
    const { sample } = seedTasks(dbPath, 40_000, { owner, status: 'submitted', sampleEvery: 1 })
    const gw = await startGateway({ dbPath, logFile: join(dir, 'gw.log') })
    let i = 0
    await load({
      url: gw.url, seconds, connections: 10, method: 'POST', headers: { 'content-type': 'application/json' },
      next: () => {
        const t = sample[i++ % sample.length] as { id: string; kieTaskId: string }
        return {
          path: `/callbacks/mj?task=${t.id}&token=${callbackToken(CALLBACK_SECRET, t.id)}`,
          body: JSON.stringify({ code: 200, msg: 'success', data: { taskId: t.kieTaskId, promptJson: '{}', resultUrls: ['https://example.com/a.jpeg'] } })
        }
      }
    })
    await gw.stop()
  } else if (what === 'startup') {
    const gw = await startGateway({ dbPath, logFile: join(dir, 'gw.log') })
    process.stdout.write(`ready in ${Math.round(gw.readyMs)} ms\n`)
    await gw.stop()
  } else throw new Error('usage: profile.js status|callbacks|startup')
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error(`no profile written in ${dir}`)
  process.stdout.write(`profile: ${join(dir, file)}\n\n${summarize(join(dir, file))}`)
}

try {
  await main()
} finally {
  killAll()
}
