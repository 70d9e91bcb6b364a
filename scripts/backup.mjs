#!/usr/bin/env node
// Online backup of the gateway's SQLite database, safe while the gateway runs.
//
// Usage: node scripts/backup.mjs [destination]
//   DATABASE_PATH  the database to copy (default ./data/gateway.db, as the gateway)
//   destination    default <folder of DATABASE_PATH>/backups/gateway-<UTC timestamp>.db,
//                  i.e. ./data/backups/… with the default DATABASE_PATH; its folder is created
//
// The source is opened read-only and copied with SQLite's online backup API (better-sqlite3's
// db.backup()) in a single step, so the copy is one consistent snapshot; in WAL mode this
// neither blocks nor is blocked by the gateway's writes. The copy is written under a temporary
// name next to the destination, switched to journal_mode=DELETE (one self-contained file),
// checked with PRAGMA integrity_check, and only then given its name, which never replaces an
// existing file. Prints the destination, its size and the number of rows in `tasks`.
// Exits 0 on success, or 1 with one line naming the problem.

import fs from 'node:fs'
import path from 'node:path'

class BackupError extends Error {}

function utcStamp(d = new Date()) {
  // 2026-11-25T14:16:48.263Z -> 20261125T141648Z
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

function removeQuietly(file) {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    try {
      fs.rmSync(f, { force: true })
    } catch {
      // best effort
    }
  }
}

async function main(argv) {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log('Usage: node scripts/backup.mjs [destination]   (reads DATABASE_PATH, default ./data/gateway.db)')
    return
  }
  if (argv.length > 1) throw new BackupError(`expected at most one argument (the destination), got ${argv.length}`)

  const source = path.resolve(process.env.DATABASE_PATH || './data/gateway.db')
  const destination = path.resolve(argv[0] ?? path.join(path.dirname(source), 'backups', `gateway-${utcStamp()}.db`))

  if (!fs.existsSync(source)) throw new BackupError(`database not found: ${source} (set DATABASE_PATH)`)
  if (destination === source) throw new BackupError('the destination is the database itself')
  if (fs.existsSync(destination)) throw new BackupError(`destination already exists, refusing to overwrite: ${destination}`)

  let Database
  try {
    Database = (await import('better-sqlite3')).default
  } catch (err) {
    throw new BackupError(`cannot load better-sqlite3 (run from the project folder after npm ci): ${err.message}`)
  }

  fs.mkdirSync(path.dirname(destination), { recursive: true })
  const partial = path.join(path.dirname(destination), `.${path.basename(destination)}.partial-${process.pid}`)
  removeQuietly(partial)

  try {
    // 1. Copy. The source connection is read-only: it cannot change the gateway's data.
    let src
    try {
      src = new Database(source, { readonly: true, fileMustExist: true })
    } catch (err) {
      throw new BackupError(`cannot open ${source}: ${err.message}`)
    }
    try {
      src.pragma('busy_timeout = 5000')
      // First step initialises; the second copies every page at once (one snapshot, no restarts).
      await src.backup(partial, { progress: () => 0x7fffffff })
    } finally {
      src.close()
    }

    // 2. Make it one self-contained file and verify it.
    let tasks
    const copy = new Database(partial, { fileMustExist: true })
    try {
      copy.pragma('journal_mode = DELETE')
      const problems = copy.pragma('integrity_check').map((row) => row.integrity_check)
      if (problems.length !== 1 || problems[0] !== 'ok') {
        throw new BackupError(`integrity_check failed on the copy: ${problems.slice(0, 3).join('; ')}`)
      }
      try {
        tasks = copy.prepare('SELECT count(*) AS n FROM tasks').get().n
      } catch (err) {
        throw new BackupError(`the copy has no readable tasks table (is ${source} the gateway's database?): ${err.message}`)
      }
    } finally {
      copy.close()
    }

    // 3. Give it its name without ever replacing a file (link fails with EEXIST).
    try {
      fs.linkSync(partial, destination)
    } catch (err) {
      if (err.code === 'EEXIST') throw new BackupError(`destination already exists, refusing to overwrite: ${destination}`)
      // Filesystems without hard links: an exclusive copy still never overwrites.
      try {
        fs.copyFileSync(partial, destination, fs.constants.COPYFILE_EXCL)
      } catch (err2) {
        if (err2.code === 'EEXIST') throw new BackupError(`destination already exists, refusing to overwrite: ${destination}`)
        throw err2
      }
    }

    const size = fs.statSync(destination).size
    console.log(`backup: ${destination}`)
    console.log(`size: ${size} bytes`)
    console.log(`tasks: ${tasks}`)
    console.log('integrity_check: ok')
  } finally {
    removeQuietly(partial)
  }
}

try {
  await main(process.argv.slice(2))
} catch (err) {
  const message = err instanceof BackupError ? err.message : `${err?.code ? `${err.code}: ` : ''}${err?.message ?? err}`
  console.error(`backup failed: ${message.replace(/\s+/g, ' ').trim()}`)
  process.exitCode = 1
}
