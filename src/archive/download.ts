import { createHash, randomUUID } from 'node:crypto'
import { open, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export type Download =
  | { ok: true; tmpPath: string; bytes: number; sha256: string; contentType: string }
  | { ok: false; permanent: boolean; error: string }

export interface DownloadOptions {
  dir: string
  maxBytes: number
  /** host or host:port values allowed; null allows any (a link kie.ai's API handed out). */
  allowedHosts: ReadonlySet<string> | null
  timeoutMs: number
}

const MAX_REDIRECTS = 3

/** The image type by its first bytes, not by what the server claims. */
export function sniffImage(head: Uint8Array): { contentType: string; ext: string } | null {
  const at = (i: number) => head[i]
  if (at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47) return { contentType: 'image/png', ext: 'png' }
  if (at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return { contentType: 'image/jpeg', ext: 'jpg' }
  if (at(0) === 0x47 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x38) return { contentType: 'image/gif', ext: 'gif' }
  const ascii = (from: number, to: number) => Buffer.from(head.subarray(from, to)).toString('latin1')
  if (head.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return { contentType: 'image/webp', ext: 'webp' }
  return null
}

const hostAllowed = (url: URL, allowed: ReadonlySet<string> | null) =>
  allowed === null || allowed.has(url.host.toLowerCase()) || allowed.has(url.hostname.toLowerCase())

/**
 * Downloads one result into a temporary file in `dir`: only from allowed hosts (redirects
 * included), at most `maxBytes`, and only if the bytes are an image. The caller renames it.
 */
export async function downloadImage(rawUrl: string, opts: DownloadOptions): Promise<Download> {
  let url: URL
  try {
    url = new URL(rawUrl)
  } catch {
    return { ok: false, permanent: true, error: 'not a URL' }
  }
  const signal = AbortSignal.timeout(opts.timeoutMs)
  let res: Response
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, permanent: true, error: `${url.protocol} is not allowed` }
    if (!hostAllowed(url, opts.allowedHosts)) return { ok: false, permanent: true, error: `host ${url.host} is not in RESULT_HOSTS` }
    // fetch refuses such a URL every time: retrying it for days helps no one.
    if (url.username !== '' || url.password !== '') return { ok: false, permanent: true, error: 'a URL with user info cannot be fetched' }
    try {
      res = await fetch(url, { redirect: 'manual', signal })
    } catch (err) {
      return { ok: false, permanent: false, error: `download failed: ${(err as Error).message}` }
    }
    const location = res.headers.get('location')
    if (res.status < 300 || res.status >= 400 || !location) break
    await res.body?.cancel()
    if (hop >= MAX_REDIRECTS) return { ok: false, permanent: false, error: 'too many redirects' }
    url = new URL(location, url)
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel()
    return { ok: false, permanent: false, error: `HTTP ${res.status}` }
  }
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (declared > opts.maxBytes) {
    await res.body.cancel()
    return { ok: false, permanent: true, error: `larger than RESULT_MAX_BYTES (${declared} bytes)` }
  }

  const tmpPath = join(opts.dir, `.tmp-${randomUUID()}`)
  const file = await open(tmpPath, 'wx')
  const hash = createHash('sha256')
  let bytes = 0
  let head = new Uint8Array(0)
  let failure: Download | null = null
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length
      if (bytes > opts.maxBytes) {
        failure = { ok: false, permanent: true, error: `larger than RESULT_MAX_BYTES (${opts.maxBytes} bytes)` }
        break
      }
      if (head.length < 16) head = Buffer.concat([head, chunk]).subarray(0, 16)
      hash.update(chunk)
      await file.write(chunk)
    }
    if (!failure) await file.sync()
  } catch (err) {
    failure = { ok: false, permanent: false, error: `download interrupted: ${(err as Error).message}` }
  } finally {
    await file.close()
  }
  const kind = failure ? null : sniffImage(head)
  if (!failure && !kind) failure = { ok: false, permanent: true, error: 'the file is not an image (PNG, JPEG, GIF or WebP)' }
  if (failure || !kind) {
    await res.body.cancel().catch(() => undefined)
    await unlink(tmpPath).catch(() => undefined)
    return failure as Download
  }
  return { ok: true, tmpPath, bytes, sha256: hash.digest('hex'), contentType: kind.contentType }
}
