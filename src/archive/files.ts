import { unlink } from 'node:fs/promises'

/** Where the admin API caches the thumbnail of an archived file: beside it. */
export const thumbnailPath = (archived: string) => `${archived}.thumb.webp`

/** Deletes an archived file and its cached thumbnail, when there is one (either may be gone already). */
export async function removeArchived(path: string): Promise<void> {
  await Promise.all([path, thumbnailPath(path)].map((p) => unlink(p).catch(() => undefined)))
}
