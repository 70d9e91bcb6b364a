// Generators for test/fuzz.test.ts: hostile HTTP requests, mostly invalid, some valid.
// Each generated request carries only what it is made of; whether it is valid is decided by
// the oracles in fuzz.test.ts from the bytes actually sent, not from the generator's intent.
import fc from 'fast-check'

export type Payload = string | Buffer | undefined

/** Lone surrogates replaced, so encodeURIComponent cannot throw. */
export const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')

// ---------------------------------------------------------------- strings

const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 40 })
const anyUnicode = fc.string({ unit: 'binary', maxLength: 40 })
/** UTF-16 code units, lone surrogates included. */
const anyUtf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 })
const odd = fc.constantFrom(
  '', ' ', '\t', '\u0000', 'null', 'undefined', 'NaN', 'Infinity', '-0', '1e309', '__proto__', 'constructor', 'prototype',
  'toString', 'hasOwnProperty', '../../etc/passwd', '%00', '%zz', '\u202e', '\ufeff', '\ud800', '\udfff', '🦄', 'ﷺ', 'a'.repeat(300),
  '<script>', "'; DROP TABLE tasks;--", '${jndi:x}', '\r\n', 'ａ'
)
/** Huge and odd strings; huge ones stay within a few tens of KB to keep runs fast. */
export const oddString = fc.oneof(
  { weight: 3, arbitrary: printable },
  { weight: 2, arbitrary: anyUnicode },
  { weight: 2, arbitrary: anyUtf16 },
  { weight: 2, arbitrary: odd },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', 'é', '🦄', '\ud800'), fc.integer({ min: 50, max: 20_000 })).map(([c, n]) => c.repeat(n)) }
)

// ---------------------------------------------------------------- JSON-ish values

const taskIdValid = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/)
export const validUpscaleBody = fc.record(
  {
    taskId: taskIdValid,
    imageIndex: fc.integer({ min: 0, max: 3 }),
    waterMark: fc.oneof(fc.string({ maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: anyUtf16.map((s) => s.slice(0, 1)), maxLength: 30 }))
  },
  { requiredKeys: ['taskId', 'imageIndex'] }
)

const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 3, withBoxedValues: false, withNullPrototype: true, withObjectString: true }),
  fc.constantFrom(null, true, false, 0, -1, 4, 1.5, -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, '1', '', [], {}, [1], { taskId: 'a' }),
  oddString
)

/** A valid body with one thing broken, or merely rearranged (then it may still be valid). */
export const mutatedUpscaleBody = fc
  .tuple(
    validUpscaleBody,
    fc.oneof(
      fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom('taskId', 'imageIndex', 'waterMark') }),
      fc.record({ op: fc.constant('set' as const), key: fc.constantFrom('taskId', 'imageIndex', 'waterMark', 'callbackUrl'), value: wrongValue }),
      fc.record({ op: fc.constant('set' as const), key: fc.constantFrom('imageIndex'), value: fc.oneof(fc.integer(), fc.double()) }),
      fc.record({ op: fc.constant('set' as const), key: fc.constantFrom('taskId', 'waterMark', 'callbackUrl'), value: oddString }),
      fc.record({
        op: fc.constant('set' as const),
        key: fc.oneof(oddString, fc.constantFrom('callBackUrl', 'TaskId', 'image_index', 'id', 'status', 'owner', 'seq')),
        value: wrongValue
      })
    )
  )
  .map(([body, m]) => {
    const out: Record<string, unknown> = { ...body }
    if (m.op === 'delete') delete out[m.key]
    else Object.defineProperty(out, m.key, { value: m.value, enumerable: true, writable: true, configurable: true })
    return out
  })

/** Spellings of an integer that JSON.parse reads as that integer. */
const intSpelling = (n: number) => fc.constantFrom(`${n}`, `${n}.0`, `${n}e0`, `${n * 10}e-1`, `${n}.000`, n === 0 ? '-0' : `${n}E+0`, ` ${n} `)

/** A valid body in unusual (but valid) JSON text: number spellings, whitespace, escapes, key order. */
export const unusualValidText = fc
  .tuple(validUpscaleBody, fc.integer({ min: 0, max: 3 }).chain((n) => fc.tuple(fc.constant(n), intSpelling(n))), fc.boolean(), fc.constantFrom('', ' ', '\n\t ', '\r\n'))
  .map(([b, [n, spelled], reverse, ws]) => {
    const escaped = (s: string) => JSON.stringify(s).replace(/[a-z]/g, (c) => (c === 'u' ? c : `\\u00${c.charCodeAt(0).toString(16)}`))
    const parts = [`${ws}"taskId"${ws}:${ws}${escaped(b.taskId)}`, `"imageIndex":${spelled}`]
    if (b.waterMark !== undefined) parts.push(`"waterMark":${escaped(b.waterMark)}`)
    if (reverse) parts.reverse()
    return { text: `${ws}{${parts.join(`${ws},`)}}${ws}`, imageIndex: n }
  })
  .map((x) => x.text)

/** Text that is not what it seems: truncated, deep, poisoned, non-finite, or not JSON at all. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  // truncated JSON (never ends in the closing brace)
  fc.tuple(validUpscaleBody, fc.nat()).map(([b, k]) => {
    const s = JSON.stringify(b)
    return s.slice(0, k % s.length)
  }),
  // deep nesting
  fc.integer({ min: 100, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 100, max: 3_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.tuple(validUpscaleBody, fc.integer({ min: 50, max: 1_200 })).map(([b, n]) => JSON.stringify({ ...b, waterMark: undefined }).slice(0, -1) + ',"x":' + '{"a":'.repeat(n) + '1' + '}'.repeat(n) + '}'),
  fc.integer({ min: 100, max: 1_500 }).map((n) => '['.repeat(n)),
  // prototype pollution
  validUpscaleBody.map((b) => JSON.stringify(b).slice(0, -1) + ',"__proto__":{"isAdmin":true}}'),
  validUpscaleBody.map((b) => '{"__proto__":{"taskId":"x"},' + JSON.stringify(b).slice(1)),
  validUpscaleBody.map((b) => JSON.stringify(b).slice(0, -1) + ',"constructor":{"prototype":{"isAdmin":true}}}'),
  validUpscaleBody.map((b) => JSON.stringify(b).slice(0, -1) + ',"\\u005f_proto__":{}}'),
  fc.constantFrom('{"__proto__":null}', '[{"__proto__":{}}]', '{"a":{"__proto__":{"b":1}}}', '{"constructor":{"prototype":null}}'),
  // lone surrogates and odd escapes
  fc.constantFrom('\\ud800', '\\udfff', '\\ud83d', '\\u0000', '\\uFFFF', '\\ud800\\ud800', '\\"', '\\\\').chain((e) =>
    fc.constantFrom(`{"taskId":"a${e}","imageIndex":1}`, `{"taskId":"a","imageIndex":1,"x${e}":1}`, `{"taskId":"a","imageIndex":1,"waterMark":"${e}"}`)
  ),
  // numbers
  fc.constantFrom('1e309', '-1e309', '-0', '1.5', '0x1', '01', '+1', '.5', 'NaN', 'Infinity', '1e-400', '3.0000000000000001', '4e0', '9007199254740993').map(
    (n) => `{"taskId":"a","imageIndex":${n}}`
  ),
  // scalars and junk
  fc.constantFrom('', ' ', 'null', 'true', '0', '"x"', '[]', '{}', '{', '}', '{"taskId":"a","imageIndex":1,}', "{'taskId':'a','imageIndex':1}", '{"taskId":"a" "imageIndex":1}', '\ufeff{"taskId":"a","imageIndex":1}', '{"taskId":"a","imageIndex":1}{"taskId":"b","imageIndex":1}', '{"taskId":"a","imageIndex":1}\u0000', '<xml/>', 'taskId=a&imageIndex=1'),
  fc.json({ maxDepth: 4 }),
  fc.string({ unit: 'binary', maxLength: 200 })
)

/** Bytes that are not UTF-8, or UTF-8 with surprises. */
export const hostileBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constantFrom(
    [0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xef, 0xbb, 0xbf]
  ).chain((bad) =>
    fc.constantFrom('{"taskId":"a', '{"taskId":"a","imageIndex":1,"waterMark":"', '{"', '').map((pre) => {
      const post = pre.includes('waterMark') ? '"}' : pre === '{"taskId":"a' ? '","imageIndex":1}' : pre === '{"' ? '":1}' : ''
      return Buffer.concat([Buffer.from(pre), Buffer.from(bad), Buffer.from(post)])
    })
  ),
  fc.uint16Array({ maxLength: 50 }).map((a) => Buffer.from(a.buffer)) // UTF-16 bytes sent as if UTF-8
)

/** Any body for POST /upscale: valid, nearly valid, or hostile. */
export const upscalePayload: fc.Arbitrary<Payload> = fc.oneof(
  { weight: 6, arbitrary: validUpscaleBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: unusualValidText },
  { weight: 6, arbitrary: mutatedUpscaleBody.map((b) => JSON.stringify(b)) },
  { weight: 6, arbitrary: hostileText },
  { weight: 2, arbitrary: hostileBytes },
  { weight: 1, arbitrary: fc.tuple(validUpscaleBody, fc.integer({ min: 7_000, max: 30_000 })).map(([b, n]) => JSON.stringify({ ...b, waterMark: 'w'.repeat(n) })) },
  { weight: 1, arbitrary: fc.constant(undefined) }
)

// ---------------------------------------------------------------- headers

export const KEYS = { A: 'test-key-aaaaaaaaaaaaaaaa', B: 'test-key-bbbbbbbbbbbbbbbb' } as const

/** The Authorization header: mostly valid (A or B), sometimes not. */
export const authorization = fc.oneof(
  { weight: 12, arbitrary: fc.constant(`Bearer ${KEYS.A}`) },
  { weight: 4, arbitrary: fc.constant(`Bearer ${KEYS.B}`) },
  { weight: 1, arbitrary: fc.constantFrom(`bearer ${KEYS.A}`, `BEARER   ${KEYS.A}  `, `Bearer\t${KEYS.B}`) },
  {
    weight: 3,
    arbitrary: fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('', 'Bearer', 'Bearer ', `Basic ${Buffer.from(`${KEYS.A}:`).toString('base64')}`, `Bearer ${KEYS.A} extra`, `Bearer ${KEYS.A}x`, `Bearer ${KEYS.A.slice(1)}`, `Token ${KEYS.A}`, `${KEYS.A}`, 'Bearer null'),
      fc.string({ unit: 'grapheme-ascii', maxLength: 60 }).map((s) => `Bearer ${s}`),
      fc.string({ unit: 'grapheme-ascii', maxLength: 300 })
    )
  }
)

/** Content types: JSON, not JSON, and odd. */
export const jsonContentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8')
export const otherContentType = fc.constantFrom(
  'text/plain', 'text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz', 'application/xml', 'application/octet-stream',
  'application/vnd.api+json', 'text/json', 'application/jsonx', 'image/png'
)
export const oddContentType = fc.oneof(
  fc.constantFrom('', '???', '/', 'application/', '*/*', 'application/json, text/plain', 'application/json; charset=latin1', 'application/json;;;', ';', 'json', 'application/json ; q=1', 'application/json\t'),
  fc.string({ unit: 'grapheme-ascii', maxLength: 60 })
)
export const contentType = fc.oneof(
  { weight: 14, arbitrary: jsonContentType },
  { weight: 2, arbitrary: otherContentType },
  { weight: 2, arbitrary: oddContentType },
  { weight: 1, arbitrary: fc.constant(undefined) }
)

/** Idempotency-Key: none, from a small pool (so keys repeat and replay), or invalid. */
export const idempotencyKey = fc.oneof(
  { weight: 10, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }).map((i) => `key-${i}`) },
  { weight: 1, arbitrary: fc.constantFrom('k'.repeat(255), ' x ', '~!@#$%^&*()', '{"json":1}', '__proto__', 'constructor') },
  { weight: 2, arbitrary: fc.constantFrom('', '   ', 'k'.repeat(256), 'é', 'a\tb', 'a\u007fb', 'ключ') }
)

/** Extra headers that should change nothing. */
export const noiseHeaders = fc.dictionary(
  fc.constantFrom('x-request-id', 'x-forwarded-for', 'accept', 'accept-encoding', 'x-foo', 'cookie', 'origin', 'x-http-method-override', 'transfer-encoding-x', 'content-encoding'),
  fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 40 }), fc.constantFrom('gzip', 'br', '../..', '*/*', '127.0.0.1', 'DELETE')),
  { maxKeys: 2 }
)

/** Transport-level truncation: a Content-Length that disagrees with the body. */
export const contentLengthSkew = fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -20, max: 20 }).filter((n) => n !== 0) })

// ---------------------------------------------------------------- paths and queries

/** A reference to a task id resolved at run time against what exists then. */
export type IdRef =
  | { kind: 'own' | 'other' | 'final'; index: number }
  | { kind: 'raw'; segment: string }
export const idRef: fc.Arbitrary<IdRef> = fc.oneof(
  { weight: 5, arbitrary: fc.nat().map((index) => ({ kind: 'own' as const, index })) },
  { weight: 1, arbitrary: fc.nat().map((index) => ({ kind: 'other' as const, index })) },
  { weight: 2, arbitrary: fc.nat().map((index) => ({ kind: 'final' as const, index })) },
  {
    weight: 4,
    arbitrary: fc.oneof(
      fc.uuid().map((u) => ({ kind: 'raw' as const, segment: u })),
      oddString.filter((s) => s.length < 500).map((s) => ({ kind: 'raw' as const, segment: encodeURIComponent(wellFormed(s)) })),
      fc.constantFrom('%', '%zz', '%ff%fe', '%c0%af', '%ed%a0%80', '..', '.', '..%2f..%2fetc', '%2F', 'a%00b', '%20', '+', 'a;b', 'x'.repeat(65), 'x'.repeat(101), '%F0%9F%A6%84').map((segment) => ({ kind: 'raw' as const, segment }))
    )
  }
)

/** A query string made of pairs; keys and values are encoded unless `raw`. */
export const queryPairs = (known: fc.Arbitrary<[string, string]>) =>
  fc.array(
    fc.oneof(
      { weight: 6, arbitrary: known },
      {
        weight: 1,
        arbitrary: fc.tuple(fc.oneof(fc.constantFrom('foo', '__proto__', 'constructor', 'hasOwnProperty', '', '[]', 'a[b]', 'constructor[prototype][x]'), printable), oddString.filter((s) => s.length < 300))
      }
    ),
    { maxLength: 4 }
  )

export const encodeQuery = (pairs: Array<[string, string]>) =>
  pairs.map(([k, v]) => `${encodeURIComponent(wellFormed(k))}=${encodeURIComponent(wellFormed(v))}`).join('&')

export const waitValue = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('0', '00', '-0') },
  { weight: 2, arbitrary: fc.constantFrom('-1', '61', '100', '1e309', 'abc', '', 'null', '0.5', '-1e3', '9'.repeat(30), 'x1', '1x', ' ') }
)
/** Waits that are valid and > 0: only sent at final or missing tasks, so they answer at once. */
export const waitPositive = fc.oneof(fc.integer({ min: 1, max: 60 }).map(String), fc.constantFrom('true', '1e1', '0x10', ' 5', '5 ', '1.5', '59.9'), oddString.filter((s) => s.length < 200))

export const listQuery = queryPairs(
  fc.oneof(
    fc.tuple(fc.constant('status'), fc.oneof(fc.constantFrom('queued', 'submitted', 'succeeded', 'failed'), fc.constantFrom('done', 'QUEUED', '', 'queued ', 'succeeded,failed'), printable)),
    fc.tuple(fc.constant('limit'), fc.oneof(fc.integer({ min: 1, max: 100 }).map(String), fc.constantFrom('0', '101', '-1', '1.5', 'abc', '', '1e2', '99999999999999999999', 'NaN'), printable)),
    fc.tuple(
      fc.constant('cursor'),
      fc.oneof(
        fc.bigInt({ min: 0n, max: 999_999_999_999_999n }).map((n) => Buffer.from(`s:${n}`).toString('base64url')),
        fc.constantFrom('', 'zzz', 'czox', 'czo=', Buffer.from('s:-1').toString('base64url'), Buffer.from('s:1234567890123456').toString('base64url'), 'x'.repeat(65)),
        printable
      )
    )
  )
)

// ---------------------------------------------------------------- callbacks from "kie.ai"

export type CbTaskRef = { kind: 'open' | 'final' | 'missing' | 'absent' | 'dup' | 'long'; index: number } | { kind: 'raw'; value: string }
export const cbTaskRef: fc.Arbitrary<CbTaskRef> = fc.oneof(
  { weight: 6, arbitrary: fc.nat().map((index) => ({ kind: 'open' as const, index })) },
  { weight: 3, arbitrary: fc.nat().map((index) => ({ kind: 'final' as const, index })) },
  { weight: 2, arbitrary: fc.constantFrom('missing', 'absent', 'dup', 'long').chain((kind) => fc.nat().map((index) => ({ kind, index }))) },
  { weight: 2, arbitrary: oddString.filter((s) => s.length < 100).map((value) => ({ kind: 'raw' as const, value })) }
)
export type CbTokenRef = 'valid' | 'otherTask' | 'otherSecret' | 'random43' | 'absent' | 'dup' | 'long' | 'validPlusOne' | 'truncated' | { raw: string }
export const cbTokenRef: fc.Arbitrary<CbTokenRef> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('valid' as const) },
  { weight: 6, arbitrary: fc.constantFrom('otherTask', 'otherSecret', 'random43', 'absent', 'dup', 'long', 'validPlusOne', 'truncated') as fc.Arbitrary<CbTokenRef> },
  { weight: 2, arbitrary: oddString.filter((s) => s.length < 200).map((raw) => ({ raw })) }
)
export type CbBody =
  | { kind: 'success' | 'failure' | 'successNoUrls' | 'mismatch' | 'badUrls' | 'codeString'; where: 'data.taskId' | 'taskId' | 'data.task_id'; msg: string; urls: string[] }
  | { kind: 'raw'; payload: Payload }
const httpUrl = fc.webUrl({ withQueryParameters: true, withFragments: true })
export const cbBody: fc.Arbitrary<CbBody> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom('success', 'success', 'failure', 'successNoUrls', 'mismatch', 'badUrls', 'codeString'),
      where: fc.constantFrom('data.taskId', 'taskId', 'data.task_id'),
      msg: fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 })),
      urls: fc.array(httpUrl, { minLength: 1, maxLength: 4 })
    })
  },
  {
    weight: 6,
    arbitrary: fc
      .oneof(
        hostileText.map((p): Payload => p),
        hostileBytes.map((p): Payload => p),
        fc.json({ maxDepth: 5 }).map((p): Payload => p),
        fc.anything({ maxDepth: 3 }).map((v): Payload => JSON.stringify(v) ?? 'undefined'),
        fc.constant<Payload>(undefined),
        fc.integer({ min: 60_000, max: 80_000 }).map((n): Payload => JSON.stringify({ code: 200, msg: 'x'.repeat(n), data: {} }))
      )
      .map((payload) => ({ kind: 'raw' as const, payload }))
  }
)
export const cbContentType = fc.oneof(
  { weight: 10, arbitrary: jsonContentType },
  { weight: 4, arbitrary: otherContentType },
  { weight: 2, arbitrary: oddContentType },
  { weight: 2, arbitrary: fc.constant(undefined) }
)
export type SigRef = 'valid' | 'none' | 'wrongKey' | 'stale' | 'future' | 'otherTask' | 'tsOnly' | 'sigOnly' | 'badTs' | 'hugeTs' | 'garbage' | 'validOld'
export const sigRef: fc.Arbitrary<SigRef> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('valid' as const) },
  { weight: 6, arbitrary: fc.constantFrom('none', 'wrongKey', 'stale', 'future', 'otherTask', 'tsOnly', 'sigOnly', 'badTs', 'hugeTs', 'garbage', 'validOld') as fc.Arbitrary<SigRef> }
)
