import { createHash } from 'node:crypto'
import { crc32, deflateSync } from 'node:zlib'

const SIZE = 64
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([len, body, crc])
}

/**
 * A 64x64 RGB PNG whose colours derive from `name`: same name, same bytes;
 * different names give visibly different images, so a mix-up shows in tests.
 */
export function renderPng(name: string): Buffer {
  const seed = createHash('sha256').update(name).digest()
  const [r, g, b] = [seed[0] ?? 0, seed[1] ?? 0, seed[2] ?? 0]
  const rowLen = 1 + SIZE * 3
  const raw = Buffer.alloc(rowLen * SIZE)
  for (let y = 0; y < SIZE; y++) {
    raw[y * rowLen] = 0 // filter type None
    for (let x = 0; x < SIZE; x++) {
      const o = y * rowLen + 1 + x * 3
      raw[o] = (r + x * 2) & 0xff
      raw[o + 1] = (g + y * 2) & 0xff
      raw[o + 2] = (b + (x + y)) & 0xff
    }
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(SIZE, 0)
  ihdr.writeUInt32BE(SIZE, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type RGB
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0))
  ])
}
