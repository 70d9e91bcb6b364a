import { createHash } from 'node:crypto'

/** What is kept of a delivery refused before its token proved anything. */
export const REFUSED_BODY_BYTES = 4096
const WINDOW_MS = 60_000
// Addresses remembered at once; beyond it the oldest windows are forgotten first.
const MAX_SOURCES = 10_000

export interface StoredBody {
  body: string
  bodyBytes: number
  bodySha256: string | null
}

/** What is stored of a body as read; `kept` is already cut to 4 KB for a stranger. */
export const storedBody = (b: ReadBody): StoredBody => ({ body: b.kept.toString('utf8'), bodyBytes: b.bytes, bodySha256: b.sha256 })

/**
 * At most `max` refused deliveries a minute per source address are stored; the rest are only
 * counted, so a stranger cannot fill the disk. Deliveries with a valid token never ask.
 */
export function createRefusalBudget(max: number) {
  const windows = new Map<string, { start: number; n: number }>()
  return {
    /** Whether one more refusal from `source` may be stored now. */
    take(source: string, now: number): boolean {
      let w = windows.get(source)
      if (w === undefined || now - w.start >= WINDOW_MS) {
        windows.delete(source)
        if (windows.size >= MAX_SOURCES) {
          for (const [key, old] of windows) if (now - old.start >= WINDOW_MS || windows.size >= MAX_SOURCES) windows.delete(key)
        }
        w = { start: now, n: 0 }
        windows.set(source, w)
      }
      w.n++
      return w.n <= max
    }
  }
}

/** A callback body as read: whole, or (for a stranger) only what is kept of it. */
export interface ReadBody {
  kept: Buffer
  bytes: number
  sha256: string
}

/**
 * Reads a body up to `limit` bytes, hashing it as it streams; only a delivery whose token is
 * valid is kept whole, a stranger's body is never held in memory beyond its first 4 KB.
 */
export function readBody(stream: NodeJS.ReadableStream, whole: boolean, limit: number): Promise<ReadBody | 'too_large'> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    const chunks: Buffer[] = []
    let bytes = 0
    let kept = 0
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > limit) {
        // The rest is drained unread: the answer is 413 whatever follows.
        stream.removeListener('data', onData)
        stream.resume()
        resolve('too_large')
        return
      }
      hash.update(chunk)
      const room = whole ? chunk.length : Math.max(0, REFUSED_BODY_BYTES - kept)
      if (room > 0) {
        chunks.push(room >= chunk.length ? chunk : chunk.subarray(0, room))
        kept += Math.min(room, chunk.length)
      }
    }
    stream.on('data', onData)
    stream.on('end', () => resolve({ kept: Buffer.concat(chunks), bytes, sha256: hash.digest('hex') }))
    stream.on('error', reject)
  })
}
