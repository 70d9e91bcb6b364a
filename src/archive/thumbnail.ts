import { randomBytes } from 'node:crypto'
import { access, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { thumbnailPath } from './files.js'

/** Thumbnails are at most this wide (never wider than the image itself). */
export const THUMBNAIL_WIDTH = 256

type Sharp = typeof import('sharp').default
let loading: Promise<Sharp> | null = null
// Loaded on the first thumbnail: a gateway whose console is never opened never maps libvips.
const loadSharp = () =>
  (loading ??= import('sharp').then(({ default: sharp }) => {
    // The cache is on disk, beside each file; one image at a time leaves the cores to the gateway.
    sharp.cache(false)
    sharp.concurrency(1)
    return sharp
  }))

const exists = (path: string) => access(path).then(() => true, () => false)

/**
 * The admin API's thumbnails: a WebP at most THUMBNAIL_WIDTH wide, made once per archived file
 * and cached beside it (`<file>.thumb.webp`; removeArchived deletes both). Written to a
 * temporary file in `tmpDir` (the archive folder, whose `.tmp-*` files are removed at start-up)
 * and renamed, so a reader never sees half a thumbnail; concurrent requests make it once.
 */
export function createThumbnails(tmpDir: string | null) {
  const making = new Map<string, Promise<void>>()

  async function make(archived: string, path: string): Promise<void> {
    const sharp = await loadSharp()
    const tmp = join(tmpDir ?? dirname(archived), `.tmp-thumb-${randomBytes(8).toString('hex')}.webp`)
    try {
      await sharp(archived).resize({ width: THUMBNAIL_WIDTH, withoutEnlargement: true }).webp({ quality: 80 }).toFile(tmp)
      await rename(tmp, path)
    } catch (err) {
      await unlink(tmp).catch(() => undefined)
      throw err
    }
    // Retention may have removed the file meanwhile: then the thumbnail goes too.
    if (!(await exists(archived))) await unlink(path).catch(() => undefined)
  }

  return {
    /** The path of the archived file's thumbnail, made first if it is not cached yet. */
    async ensure(archived: string): Promise<string> {
      const path = thumbnailPath(archived)
      if (await exists(path)) return path
      let pending = making.get(path)
      if (pending === undefined) {
        pending = make(archived, path).finally(() => making.delete(path))
        making.set(path, pending)
      }
      await pending
      return path
    }
  }
}

export type Thumbnails = ReturnType<typeof createThumbnails>
