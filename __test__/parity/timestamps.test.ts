// Every SQLite timestamp format users already have: Prisma 7's ISO text, integer
// milliseconds (Prisma's Rust engine; the driver adapter's timestampFormat 'unixepoch-ms')
// and integer seconds (KavachOS core's Drizzle tables). The adapter reads all three,
// writes each column in the format it already holds, and its filters keep working.
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { createTables, openNative, openPrisma, removeDir, tempDir } from './harness'

const { createAdapter } = createRequire(import.meta.url)('../../index.js')
const dir = tempDir('timestamps')
afterAll(() => removeDir(dir))
let n = 0
const file = () => path.join(dir, `db-${++n}.db`)
const T0 = new Date('2025-01-02T03:04:05.000Z')
const at = (s: number) => new Date(T0.getTime() + s * 1000)
const rawTypes = (db: string, table: string, column: string) =>
  new Database(db, { readonly: true }).prepare(`SELECT typeof(${column}) t, ${column} v FROM ${table} ORDER BY rowid`).all()

const agent = (id: string, createdAt: Date) => ({
  id, ownerId: 'o', name: id, type: 't', tokenHash: `h-${id}`, tokenPrefix: 'p', createdAt, updatedAt: createdAt,
})
const log = (id: string, timestamp: Date) => ({
  id, agentId: 'a', userId: 'u', action: 'x', resource: 'r', result: 'allowed', durationMs: 1, timestamp,
})

describe("Prisma 7 with timestampFormat: 'unixepoch-ms'", () => {
  it('is read identically, filtered identically, and written in its format', async () => {
    const db = file()
    createTables(db)
    const prisma = openPrisma(db, { timestampFormat: 'unixepoch-ms' })
    for (let i = 0; i < 5; i++) await prisma.adapter.createAuditLog(log(`p${i}`, at(i)))
    await prisma.adapter.createAgent(agent('pa', at(1)))
    await prisma.adapter.upsertRateLimit('a', 'r', at(0), 3)
    await prisma.adapter.createSession({ id: 'old', userId: 'u', expiresAt: at(-60), createdAt: at(-120) })
    const expected = {
      logs: await prisma.adapter.queryAuditLogs({ since: at(1), until: at(3) }),
      agent: await prisma.adapter.findAgentById('pa'),
      rate: await prisma.adapter.findRateLimit('a', 'r', at(0)),
    }
    await prisma.close()
    expect(rawTypes(db, 'kavach_audit_logs', 'timestamp')[0]).toEqual({ t: 'integer', v: at(0).getTime() })

    const native = openNative(db)
    expect(await native.adapter.queryAuditLogs({ since: at(1), until: at(3) })).toEqual(expected.logs)
    expect(await native.adapter.findAgentById('pa')).toEqual(expected.agent)
    expect(await native.adapter.findRateLimit('a', 'r', at(0))).toEqual(expected.rate)
    await native.adapter.createAuditLog(log('n5', at(5)))
    expect(await native.adapter.deleteExpiredSessions()).toBe(1)
    await native.close()
    expect(rawTypes(db, 'kavach_audit_logs', 'timestamp').at(-1)).toEqual({ t: 'integer', v: at(5).getTime() })

    const again = openPrisma(db, { timestampFormat: 'unixepoch-ms' })
    expect((await again.adapter.queryAuditLogs({ since: at(4) })).map((l: any) => l.id)).toEqual(['n5', 'p4'])
    await again.close()
  })
})

describe("KavachOS core's own tables (Drizzle: integer seconds, integer booleans, JSON text)", () => {
  const coreDdl = `
    CREATE TABLE kavach_agents (id text PRIMARY KEY NOT NULL, owner_id text NOT NULL, tenant_id text, name text NOT NULL,
      type text NOT NULL, status text DEFAULT 'active' NOT NULL, token_hash text NOT NULL, token_prefix text NOT NULL,
      expires_at integer, last_active_at integer, metadata text, created_at integer NOT NULL, updated_at integer NOT NULL);
    CREATE TABLE kavach_sessions (id text PRIMARY KEY NOT NULL, user_id text NOT NULL, expires_at integer NOT NULL,
      metadata text, created_at integer NOT NULL);
    CREATE TABLE kavach_audit_logs (id text PRIMARY KEY NOT NULL, agent_id text NOT NULL, user_id text NOT NULL,
      action text NOT NULL, resource text NOT NULL, parameters text, result text NOT NULL, reason text,
      duration_ms integer NOT NULL, tokens_cost integer, ip text, user_agent text, timestamp integer NOT NULL);`

  it('reads seconds as Dates, writes seconds, and filters in seconds', async () => {
    const db = file()
    const raw = new Database(db)
    raw.exec(coreDdl)
    const secs = (d: Date) => Math.floor(d.getTime() / 1000)
    raw.prepare(`INSERT INTO kavach_agents VALUES ('core', 'o', NULL, 'n', 't', 'active', 'h', 'p', ?, NULL, '{"k":1}', ?, ?)`).run(secs(at(3600)), secs(T0), secs(T0))
    raw.prepare(`INSERT INTO kavach_audit_logs VALUES ('c0', 'a', 'u', 'x', 'r', NULL, 'allowed', NULL, 1, NULL, NULL, NULL, ?)`).run(secs(at(0)))
    raw.prepare(`INSERT INTO kavach_sessions VALUES ('gone', 'u', ?, NULL, ?)`).run(Math.floor(Date.now() / 1000) - 60, secs(T0))
    raw.close()

    const native = openNative(db)
    expect(await native.adapter.findAgentById('core')).toMatchObject({ createdAt: T0, expiresAt: at(3600), metadata: { k: 1 }, status: 'active' })
    await native.adapter.createAuditLog(log('c1', at(10)))
    expect((await native.adapter.queryAuditLogs({ since: at(5) })).map((l: any) => l.id)).toEqual(['c1'])
    expect((await native.adapter.queryAuditLogs({ until: at(5) })).map((l: any) => l.id)).toEqual(['c0'])
    await native.adapter.createSession({ id: 'live', userId: 'u', expiresAt: new Date(Date.now() + 60_000), createdAt: T0 })
    expect(await native.adapter.deleteExpiredSessions()).toBe(1)
    expect(await native.adapter.findSessionById('live')).toMatchObject({ createdAt: T0 })
    await native.close()
    expect(rawTypes(db, 'kavach_audit_logs', 'timestamp')).toEqual([
      { t: 'integer', v: secs(at(0)) },
      { t: 'integer', v: secs(at(10)) },
    ])
  })

  it('an empty integer-typed column takes seconds; the tables the adapter adds take ISO text', async () => {
    const db = file()
    const raw = new Database(db)
    raw.exec(coreDdl)
    raw.close()
    const native = openNative(db)
    await native.adapter.createAgent(agent('fresh', T0))
    await native.adapter.upsertTrustScore({ agentId: 'fresh', score: 1, level: 'l', factors: {}, computedAt: T0 })
    await native.close()
    expect(rawTypes(db, 'kavach_agents', 'created_at')).toEqual([{ t: 'integer', v: T0.getTime() / 1000 }])
    expect(rawTypes(db, 'kavach_trust_scores', 'computed_at')).toEqual([{ t: 'text', v: '2025-01-02T03:04:05.000+00:00' }])
  })
})

describe('the timestampFormat option', () => {
  it('writes every date in the format it names', async () => {
    for (const [format, expected] of [
      ['iso8601', { t: 'text', v: '2025-01-02T03:04:05.000+00:00' }],
      ['unixepoch-ms', { t: 'integer', v: T0.getTime() }],
      ['unixepoch-s', { t: 'integer', v: T0.getTime() / 1000 }],
    ] as const) {
      const db = file()
      const native = openNative(db, { timestampFormat: format })
      await native.adapter.createAgent(agent('x', T0))
      expect(await native.adapter.listAgents({ ownerId: 'o' })).toMatchObject([{ createdAt: T0 }])
      await native.close()
      expect(rawTypes(db, 'kavach_agents', 'created_at')).toEqual([expected])
    }
  })

  it('refuses an unknown format at once', () => {
    expect(() => createAdapter(':memory:', { timestampFormat: 'unix' })).toThrow(/timestampFormat 'unix'/)
  })
})
