import { describe, expect, it } from 'vitest'
import { createGroupCommit } from '../src/db/group-commit.js'
import { openDatabase } from '../src/db/open.js'

describe('group commit', () => {
  it('writes concurrent submissions in one transaction, and a failing write fails alone', async () => {
    const db = openDatabase(':memory:')
    db.exec('CREATE TABLE t (v INTEGER NOT NULL CHECK (v >= 0))')
    let transactions = 0
    const inTransaction = db.transaction((fn: () => void) => {
      transactions++
      fn()
    })
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)')
    const writes = createGroupCommit(inTransaction)
    // Each write is a savepoint of its own, like the repository's methods.
    const write = (v: number) => writes.submit(db.transaction(() => insert.run(v).changes))
    const results = await Promise.allSettled([write(1), write(2), write(-1), write(3)])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
    expect(transactions).toBe(1)
    expect(db.prepare('SELECT v FROM t ORDER BY v').all()).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }])
    await write(4)
    expect(transactions).toBe(2)
    db.close()
  })
})
