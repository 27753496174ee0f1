// What lands on disk (read back with plain SQLite), URL forms, file databases,
// isolation between in-memory adapters, concurrency, close().
import Database from 'better-sqlite3'
import { mkdtempSync, existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createAdapter, schemaDdl } from '../index.js'
import { make, T0 } from './fixtures'

const dir = mkdtempSync(join(tmpdir(), 'kavach-native-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const dbPath = () => join(dir, `db-${++n}.db`)

describe('rows on disk, as Prisma 7 writes them', () => {
  it('DateTime as ISO text with milliseconds and +00:00, Json as JSON.stringify text, Boolean as 0/1', async () => {
    const path = dbPath()
    const db = createAdapter(`file:${path}`)
    await db.createUser(make.user({ id: 'u1', banned: true, metadata: { b: 1, a: 2.0, big: 1e21, small: 1.5e-7, negz: -0, s: 'é\u2028</script>', q: 'a"b\\c\n\u0001' }, createdAt: new Date('2025-01-02T03:04:05Z') }))
    await db.createUser(make.user({ id: 'u2', metadata: null }))
    await db.createUser(make.user({ id: 'u3' }))
    await db.close()
    const raw = new Database(path, { readonly: true })
    const row = raw.prepare("SELECT created_at, typeof(created_at) t, banned, typeof(banned) bt, metadata, typeof(metadata) mt, force_password_reset f FROM kavach_users WHERE id = 'u1'").get() as any
    expect(row).toEqual({
      created_at: '2025-01-02T03:04:05.000+00:00',
      t: 'text',
      banned: 1,
      bt: 'integer',
      metadata: '{"b":1,"a":2,"big":1e+21,"small":1.5e-7,"negz":0,"s":"é\u2028</script>","q":"a\\"b\\\\c\\n\\u0001"}',
      mt: 'text',
      f: 0,
    })
    const nulls = raw.prepare("SELECT id, metadata, typeof(metadata) t FROM kavach_users WHERE id IN ('u2', 'u3') ORDER BY id").all()
    expect(nulls).toEqual([
      { id: 'u2', metadata: 'null', t: 'text' },
      { id: 'u3', metadata: null, t: 'null' },
    ])
    raw.close()
  })

  it('creates every table with Prisma\'s index names, WAL, and finds rows others wrote', async () => {
    const path = dbPath()
    const db = createAdapter(path)
    await db.listAgents()
    const raw = new Database(path)
    const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'kavach_%'").all()
    expect(tables).toHaveLength(39)
    const indexes = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'kavach_%'").pluck().all()
    expect(indexes).toEqual(expect.arrayContaining(['kavach_users_email_key', 'kavach_audit_logs_timestamp_idx', 'kavach_oauth_access_tokens_refresh_token_key']))
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal')
    raw.prepare(`INSERT INTO kavach_audit_logs (id, agent_id, user_id, action, resource, result, duration_ms, timestamp, parameters)
                 VALUES ('ext', 'a', 'u', 'x', 'r', 'allowed', 1, '2025-01-02T03:04:05.678+00:00', '{"k":[1,2]}')`).run()
    raw.close()
    const [log] = await db.queryAuditLogs({ since: T0, until: T0 })
    expect(log).toMatchObject({ id: 'ext', timestamp: T0, parameters: { k: [1, 2] }, reason: null })
    await db.close()
  })

  it('parses stored JSON as JSON.parse does; a row holding invalid JSON rejects naming the field, and others still read', async () => {
    const path = dbPath()
    const db = createAdapter(path)
    await db.listAgents()
    const raw = new Database(path)
    const insert = raw.prepare(`INSERT INTO kavach_audit_logs (id, agent_id, user_id, action, resource, result, duration_ms, timestamp, parameters)
                 VALUES (?, ?, 'u', 'x', 'r', 'allowed', 1, '2025-01-02T03:04:05.678+00:00', ?)`)
    insert.run('good', 'agent-good', '{"2":"two","1":"one","__proto__":{"x":1},"big":12345678901234567890}')
    insert.run('bad', 'agent-bad', '{"unclosed":')
    raw.close()
    const [good] = await db.queryAuditLogs({ agentId: 'agent-good' })
    expect(good?.parameters).toEqual(JSON.parse('{"2":"two","1":"one","__proto__":{"x":1},"big":12345678901234567890}'))
    expect(Object.keys(good?.parameters as object)).toEqual(['1', '2', '__proto__', 'big'])
    const error = await db.queryAuditLogs({ limit: 10 }).catch((e) => e)
    expect(error).toBeInstanceOf(Error)
    expect(error.message).toMatch(/KavachAuditLog\.parameters .*Json: invalid JSON/)
    await db.close()
  })

  it('leaves existing tables alone and skipMigrations creates nothing', async () => {
    const path = dbPath()
    const raw = new Database(path)
    raw.exec('CREATE TABLE kavach_users (id TEXT PRIMARY KEY, email TEXT, legacy TEXT)')
    raw.close()
    const db = createAdapter(path)
    await db.findAgentById('x')
    await db.close()
    const check = new Database(path)
    expect(check.prepare('PRAGMA table_info(kavach_users)').all().map((c: any) => c.name)).toEqual(['id', 'email', 'legacy'])
    check.close()
    const skipPath = dbPath()
    const skipped = createAdapter(skipPath, { skipMigrations: true })
    const error = await skipped.findAgentById('x').catch((e) => e)
    // Prisma's code for a missing table, with its meta (issue #12).
    expect(error.code).toBe('P2021')
    expect(error.meta).toEqual({ modelName: 'KavachAgent', table: 'kavach_agents' })
    expect(error.message).toContain('`kavach_agents` does not exist')
    await skipped.close()
  })

  it('schemaDdl gives the statements the adapter runs', () => {
    const ddl = schemaDdl('sqlite')
    expect(ddl[0]).toMatch(/^CREATE TABLE IF NOT EXISTS "kavach_users"/)
    expect(ddl.filter((s) => s.startsWith('CREATE TABLE'))).toHaveLength(39)
  })
})

describe('URLs', () => {
  it('accepts file: relative to the working directory, plain paths and sqlite: URLs, and creates the file', async () => {
    const forms = [
      (p: string) => `file:${relative(process.cwd(), p)}?connection_limit=2&socket_timeout=3`,
      (p: string) => p,
      (p: string) => `sqlite:${p}`,
      (p: string) => `sqlite://${p}`,
    ]
    for (const form of forms) {
      const path = dbPath()
      const db = createAdapter(form(path))
      await db.createUser(make.user({ id: 'url' }))
      expect(await db.findUserById('url')).not.toBeNull()
      await db.close()
      expect(existsSync(path)).toBe(true)
    }
  })

  it('throws at once for an empty URL or an unknown scheme, listing the accepted forms, never echoing a password', () => {
    expect(() => createAdapter('')).toThrow(/file:\.\/dev\.db/)
    expect(() => createAdapter('mongodb://admin:s3cret@host/db')).toThrow(/unsupported URL scheme 'mongodb:'/)
    try {
      createAdapter('mongodb://admin:s3cret@host/db')
    } catch (e: any) {
      expect(e.message).not.toContain('s3cret')
    }
    expect(() => (createAdapter as any)(undefined)).toThrow(/must be a string/)
  })

  it('reports an unopenable file on first use, naming the file', async () => {
    const db = createAdapter(join(dir, 'no-such-dir', 'x.db'))
    const error = await db.findUserById('x').catch((e) => e)
    expect(error.message).toContain('no-such-dir')
    await db.close()
  })
})

describe('in-memory isolation and lifetime', () => {
  it('every :memory: adapter is its own database', async () => {
    const a = createAdapter(':memory:')
    const b = createAdapter(':memory:')
    await a.createUser(make.user({ id: 'only-in-a' }))
    expect(await a.findUserById('only-in-a')).not.toBeNull()
    expect(await b.findUserById('only-in-a')).toBeNull()
    await Promise.all([a.close(), b.close()])
  })

  it('stays consistent under concurrent calls', async () => {
    const db = createAdapter(':memory:')
    await Promise.all(Array.from({ length: 200 }, (_, i) => db.createAuditLog(make.auditLog({ id: `c${i}` }))))
    expect(await db.queryAuditLogs({ limit: 1000 })).toHaveLength(200)
    await db.close()
  })

  it('after close() calls reject with a clear error', async () => {
    const db = createAdapter(':memory:')
    await db.findUserById('x')
    await db.close()
    const error = await db.findUserById('x').catch((e) => e)
    expect(error.message).toContain('closed')
  })
})

describe('concurrency on a file database', () => {
  it('500 concurrent writes all succeed, interleaved with reads', async () => {
    const path = dbPath()
    const db = createAdapter(path)
    const writes = Array.from({ length: 500 }, (_, i) => db.createAuditLog(make.auditLog({ id: `w${i}`, timestamp: new Date(T0.getTime() + i) })))
    const reads = Array.from({ length: 100 }, () => db.queryAuditLogs({ limit: 5 }))
    await Promise.all([...writes, ...reads])
    expect(await db.queryAuditLogs({ limit: 1000 })).toHaveLength(500)
    await db.close()
  })

  it('two adapters on one file (two writers) both succeed', async () => {
    const path = dbPath()
    const a = createAdapter(path)
    const b = createAdapter(path)
    await a.listAgents()
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).createAgent(make.agent({ id: `two-${i}` }))),
    )
    expect(await a.listAgents()).toHaveLength(100)
    await Promise.all([a.close(), b.close()])
  })
})
