// Cross-reading: a database written only by one implementation is read identically by both.
//   - written by Prisma 7 (@kavachos/prisma over better-sqlite3), read by native and Prisma;
//   - written by the native adapter (which also created the tables), read by both.
// The written file is copied once per reader (two SQLite libraries in one process must not
// share a file: closing one's descriptor drops the other's POSIX locks), then every reader
// runs the same read calls, including the date filters: queryAuditLogs({ since, until })
// exactly at, just before and just after stored instants, findRateLimit(..., windowStart),
// and deleteExpiredSessions (compared by count and by the rows left behind).
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type Call, CallGenerator } from './generator'
import {
  type Adapter,
  createTables,
  describeOutcome,
  diffDumps,
  dumpTables,
  invoke,
  openNative,
  openPrisma,
  outcomeKey,
  removeDir,
  show,
  tempDir,
} from './harness'
import { parseSchema } from './prisma-schema'

const schema = parseSchema(fs.readFileSync(path.resolve(__dirname, '../../schema.prisma'), 'utf8'))
const WRITES = 600
const READS = 800
const isWrite = (m: string) => /^(create|update|upsert|mark)/.test(m)
const isRead = (m: string) => /^(find|list|query)/.test(m)

const dirs: string[] = []
afterAll(() => {
  if (process.env.PARITY_KEEP_DB !== '1') dirs.forEach(removeDir)
})

type Plain = Extract<Call, { kind: 'call' }>

/** Writes with `writer` only; returns the calls made and the successful results. */
async function write(writer: Adapter, generator: CallGenerator) {
  const rows: { method: string; value: any }[] = []
  for (let i = 0; i < WRITES; i++) {
    const call = generator.callMatching(isWrite)
    const outcome = await invoke(writer, call.method, call.args)
    if (outcome.ok) rows.push({ method: call.method, value: outcome.value })
  }
  return rows
}

/** Read calls: generated ones plus date-boundary probes built from what was written. */
function readCalls(generator: CallGenerator, rows: { method: string; value: any }[]): Plain[] {
  const calls: Plain[] = Array.from({ length: READS }, () => generator.callMatching(isRead))
  const logs = rows.filter((r) => r.method === 'createAuditLog').map((r) => r.value)
  for (const log of logs.slice(0, 60)) {
    const t = (log.timestamp as Date).getTime()
    for (const [since, until] of [
      [t, t],
      [t + 1, undefined],
      [undefined, t - 1],
      [t - 86_400_000, t],
      [t, t + 86_400_000],
    ]) {
      const filter: Record<string, unknown> = { limit: 1000 }
      if (since !== undefined) filter.since = new Date(since)
      if (until !== undefined) filter.until = new Date(until)
      calls.push({ kind: 'call', method: 'queryAuditLogs', args: [filter] })
      calls.push({ kind: 'call', method: 'queryAuditLogs', args: [{ ...filter, agentId: log.agentId }] })
    }
  }
  const limits = rows.filter((r) => r.method === 'upsertRateLimit').map((r) => r.value)
  for (const rl of limits) {
    const w = (rl.windowStart as Date).getTime()
    for (const d of [0, 1, -1]) calls.push({ kind: 'call', method: 'findRateLimit', args: [rl.agentId, rl.resource, new Date(w + d)] })
  }
  for (const s of rows.filter((r) => r.method === 'createSession').map((r) => r.value)) {
    calls.push({ kind: 'call', method: 'findSessionById', args: [s.id] })
  }
  return calls
}

describe.each([
  { writerName: 'prisma', label: 'written by Prisma 7' },
  { writerName: 'native', label: 'written by the native adapter' },
])('a database $label', ({ writerName }) => {
  it(
    'is read identically by the native adapter and by Prisma 7, date filters included',
    async () => {
      const dir = tempDir(`cross-${writerName}`)
      dirs.push(dir)
      const source = path.join(dir, 'written.db')
      if (writerName === 'prisma') createTables(source)
      const writer = writerName === 'prisma' ? openPrisma(source) : openNative(source)
      const generator = new CallGenerator(writerName === 'prisma' ? 7001 : 7002, schema)
      let rows: { method: string; value: any }[]
      try {
        rows = await write(writer.adapter, generator)
      } finally {
        await writer.close()
      }
      expect(rows.filter((r) => r.method === 'createAuditLog').length).toBeGreaterThan(20)
      expect(rows.filter((r) => r.method === 'createSession').length).toBeGreaterThan(5)
      expect(rows.filter((r) => r.method === 'upsertRateLimit').length).toBeGreaterThan(5)

      const fileN = path.join(dir, 'read-by-native.db')
      const fileP = path.join(dir, 'read-by-prisma.db')
      for (const target of [fileN, fileP]) {
        fs.copyFileSync(source, target)
        if (fs.existsSync(`${source}-wal`)) fs.copyFileSync(`${source}-wal`, `${target}-wal`) // in case close() left one
      }
      const N = openNative(fileN)
      const P = openPrisma(fileP)
      const mismatches: string[] = []
      let nonEmpty = 0
      try {
        const calls = readCalls(generator, rows)
        for (const [index, call] of calls.entries()) {
          const [n, p] = await Promise.all([invoke(N.adapter, call.method, call.args), invoke(P.adapter, call.method, call.args)])
          if (p.ok && p.value !== null && !(Array.isArray(p.value) && p.value.length === 0)) nonEmpty++
          if (outcomeKey(n) !== outcomeKey(p)) {
            mismatches.push(`read #${index}: ${call.method}(${call.args.map((a) => show(a)).join(', ')})\n native: ${describeOutcome(n)}\n prisma: ${describeOutcome(p)}`)
          }
        }
        expect(nonEmpty, 'most reads should find something').toBeGreaterThan(calls.length / 3)
        // The expiry sweep compares with "now" on each side; the sessions are hours away from it.
        const [n, p] = await Promise.all([N.adapter.deleteExpiredSessions(), P.adapter.deleteExpiredSessions()])
        if (n !== p) mismatches.push(`deleteExpiredSessions(): native ${n}, prisma ${p}`)
        expect(p).toBeGreaterThan(0)
      } finally {
        await N.close()
        await P.close()
      }
      const rowDiffs = diffDumps(dumpTables(fileN), dumpTables(fileP))
      if (mismatches.length) console.log(`${writerName}-written database, read mismatches:\n${mismatches.slice(0, 15).join('\n\n')}`)
      if (rowDiffs.length) console.log(`${writerName}-written database, rows after deleteExpiredSessions differ:\n${rowDiffs.join('\n')}`)
      expect(mismatches.length, 'reads differ (printed above)').toBe(0)
      expect(rowDiffs.length, 'rows differ after deleteExpiredSessions (printed above)').toBe(0)
    },
    60_000,
  )
})
