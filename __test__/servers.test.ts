// PostgreSQL and MySQL/MariaDB only: Prisma URL parameters, lost connections, a server
// that goes away and comes back (through a TCP proxy we control), pool limits.
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createAdapter } from '../index.js'
import { dropFreshDatabases, freshAdapter, lastCreated, make, provider, serverUrl, withParams } from './fixtures'

afterEach(async () => {
  await dropFreshDatabases()
})

/** This file's PostgreSQL sessions carry their own application_name, so that killing them
 * leaves alone the adapters of the test files running beside it. */
const APP_NAME = `kavach-native-servers-test-${process.pid}`

/** Kills every server session of this file's adapters. */
async function killSessions() {
  if (provider === 'postgresql') {
    const { Client } = await import('pg')
    const client = new Client({ connectionString: serverUrl() })
    await client.connect()
    const { rows } = await client.query(
      'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [APP_NAME],
    )
    await client.end()
    return rows.length
  }
  const mysql = await import('mysql2/promise')
  const conn = await mysql.createConnection(serverUrl())
  // Only the sessions on this test's own database: other files' adapters run beside it.
  const [rows] = (await conn.query('SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()', [lastCreated().name])) as any
  for (const { id } of rows) await conn.query(`KILL CONNECTION ${id}`).catch(() => {})
  await conn.end()
  return rows.length
}

/** A TCP proxy in front of the real server, so a test can take "the server" down. */
function proxy(target: URL) {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || (provider === 'postgresql' ? 5432 : 3306)), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
  })
  let port = 0
  return {
    async start() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
      port = (server.address() as net.AddressInfo).port
      return port
    },
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

describe(`${provider} server`, () => {
  it('recovers when its connections are terminated mid-run', async () => {
    const db = await freshAdapter({ connection_limit: '3', ...(provider === 'postgresql' ? { application_name: APP_NAME } : {}) })
    await Promise.all(Array.from({ length: 6 }, (_, i) => db.createUser(make.user({ id: `before-${i}` }))))
    expect(await killSessions()).toBeGreaterThan(0)
    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => db.findUserById(`before-${i}`)))
    expect(users.every((u) => u !== null)).toBe(true)
    await db.createUser(make.user({ id: 'after' }))
    expect(await db.findUserById('after')).not.toBeNull()
    await db.close()
  })

  it('names host and port when the server is down, then recovers when it is back', async () => {
    const seed = await freshAdapter()
    await seed.listAgents()
    await seed.close()
    const target = new URL(serverUrl())
    const relay = proxy(target)
    const port = await relay.start()
    const base = new URL(withParams(serverUrl(), { pool_timeout: '1', connect_timeout: '1' }))
    base.port = String(port)
    // The database `seed` made, reached through the proxy.
    const { name } = lastCreated()
    const db = createAdapter(
      provider === 'postgresql' ? withParams(base.toString(), { schema: name }) : withParams(base.toString(), {}, name),
    )
    await db.createUser(make.user({ id: 'up' }))
    await relay.stop()
    const error = await db.findUserById('up').catch((e) => e)
    expect(error).toBeInstanceOf(Error)
    expect(['P1001', 'P1017']).toContain(error.code)
    const again = await db.findUserById('up').catch((e) => e)
    expect(again.code).toBe('P1001')
    expect(again.message).toContain(`127.0.0.1:${port}`)
    expect(again.message).not.toMatch(/password/i)
    await relay.start()
    expect(await db.findUserById('up')).not.toBeNull()
    await db.close()
    await relay.stop()
  })

  it('completes 1,000 concurrent calls with connection_limit=5', async () => {
    const db = await freshAdapter({ connection_limit: '5' })
    const calls = Array.from({ length: 1000 }, (_, i) =>
      i % 4 === 0 ? db.createAuditLog(make.auditLog({ id: `c${i}` })) : db.queryAuditLogs({ limit: 5 }),
    )
    const results = await Promise.allSettled(calls)
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    expect(await db.queryAuditLogs({ limit: 1000 })).toHaveLength(250)
    await db.close()
  })

  it('reports P2024 when no pooled connection frees up within pool_timeout', async () => {
    const db = await freshAdapter({ connection_limit: '1', pool_timeout: '0.3' })
    await db.listAgents()
    let release!: () => void
    const held = db.transaction(() => new Promise<void>((r) => (release = r)), { timeout: 10_000 })
    await new Promise((r) => setTimeout(r, 50))
    const error = await db.listAgents().catch((e) => e)
    expect(error.code).toBe('P2024')
    release()
    await held
    await db.close()
  })

  it('honours isolationLevel: Serializable conflicts surface as P2034', async () => {
    const db = await freshAdapter()
    await db.upsertTrustScore(make.trustScore({ agentId: 'x', score: 0 }))
    const bump = () =>
      db.transaction(
        async (tx) => {
          const current = await tx.findTrustScore('x')
          await new Promise((r) => setTimeout(r, 50))
          await tx.upsertTrustScore({ ...current!, score: current!.score + 1 })
        },
        { isolationLevel: 'Serializable' },
      )
    const results = await Promise.allSettled([bump(), bump()])
    const failures = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
    expect((await db.findTrustScore('x'))!.score).toBe(2 - failures.length)
    expect(failures.length).toBeGreaterThan(0)
    for (const f of failures) expect(f.reason.code).toBe('P2034')
    await db.close()
  })

  it.runIf(provider === 'postgresql')("reads and writes KavachOS core's own tables (TIMESTAMPTZ, JSONB)", async () => {
    const { Client } = await import('pg')
    const schema = `kt_core_${process.pid}_${Date.now().toString(36)}`
    const client = new Client({ connectionString: serverUrl() })
    await client.connect()
    await client.query(`CREATE SCHEMA "${schema}"`)
    await client.query(`CREATE TABLE "${schema}".kavach_audit_logs (id text PRIMARY KEY, agent_id text NOT NULL, user_id text NOT NULL,
      action text NOT NULL, resource text NOT NULL, parameters jsonb, result text NOT NULL, reason text, duration_ms integer NOT NULL,
      tokens_cost integer, ip text, user_agent text, "timestamp" timestamptz NOT NULL)`)
    await client.query(`SET TIME ZONE 'Asia/Kolkata'`)
    await client.query(`INSERT INTO "${schema}".kavach_audit_logs VALUES ('core', 'a', 'u', 'x', 'r', '{"k": [1]}', 'allowed', NULL, 5, NULL, NULL, NULL, '2025-01-02 08:34:05.678+05:30')`)
    const db = createAdapter(withParams(serverUrl(), { schema }))
    const T = new Date('2025-01-02T03:04:05.678Z')
    expect(await db.queryAuditLogs({ since: T, until: T })).toMatchObject([{ id: 'core', timestamp: T, parameters: { k: [1] } }])
    await db.createAuditLog(make.auditLog({ id: 'ours', timestamp: new Date(T.getTime() + 1000) }))
    const { rows } = await client.query(`SELECT extract(epoch from "timestamp") * 1000 AS ms FROM "${schema}".kavach_audit_logs WHERE id = 'ours'`)
    expect(Number(rows[0].ms)).toBe(T.getTime() + 1000)
    expect((await db.queryAuditLogs({ since: new Date(T.getTime() + 1) })).map((l) => l.id)).toEqual(['ours'])
    await db.close()
    await client.query(`DROP SCHEMA "${schema}" CASCADE`)
    await client.end()
  })

  it('rejects a malformed URL at once without echoing the password', () => {
    const scheme = provider === 'postgresql' ? 'postgresql' : 'mysql'
    expect(() => createAdapter(`${scheme}://user:hunter2@[::1/db`)).toThrow(/malformed/)
    try {
      createAdapter(`${scheme}://user:hunter2@[::1/db`)
    } catch (e: any) {
      expect(e.message).not.toContain('hunter2')
    }
  })
})

// The codes Prisma 7 gives for each way a connection can be refused (measured with
// @prisma/adapter-pg; its MariaDB adapter reports every one as a pool timeout, P2039).
describe(`${provider} connection failures`, () => {
  const attempt = async (url: string) => {
    const db = createAdapter(url)
    try {
      return await db.findAgentById('x').then(
        () => null,
        (e: any) => e,
      )
    } finally {
      await db.close()
    }
  }
  const expectCode = (error: any, code: string, message: RegExp) => {
    expect(error?.name).toBe('PrismaClientKnownRequestError')
    expect(error?.code).toBe(code)
    expect(error?.message).toMatch(message)
  }

  it('an unknown database is P1003 naming it', async () => {
    expectCode(await attempt(withParams(serverUrl(), {}, 'kavach_no_such_db')), 'P1003', /Database `kavach_no_such_db` does not exist/)
  })

  it('an unknown user is P1010 on PostgreSQL (its trust rule lets anyone try) and P1000 on MySQL', async () => {
    const url = new URL(serverUrl())
    url.username = 'kavach_no_such_user'
    const error = await attempt(url.toString())
    if (provider === 'postgresql') expectCode(error, 'P1010', /User was denied access on the database/)
    else expectCode(error, 'P1000', /credentials for `kavach_no_such_user` are not valid/)
  })

  it.skipIf(provider !== 'mysql')('a wrong password is P1000, and the password is in no message', async () => {
    const mysql = await import('mysql2/promise')
    const conn = await mysql.createConnection(serverUrl())
    await conn.query("CREATE USER IF NOT EXISTS 'kavach_pw'@'%' IDENTIFIED BY 'right-pw'")
    await conn.query("CREATE USER IF NOT EXISTS 'kavach_pw'@'localhost' IDENTIFIED BY 'right-pw'")
    try {
      const url = new URL(serverUrl())
      url.username = 'kavach_pw'
      url.password = 'hunter2-wrong'
      const error = await attempt(url.toString())
      expectCode(error, 'P1000', /credentials for `kavach_pw` are not valid/)
      expect(error.message).not.toContain('hunter2')
    } finally {
      await conn.query("DROP USER IF EXISTS 'kavach_pw'@'%'")
      await conn.query("DROP USER IF EXISTS 'kavach_pw'@'localhost'")
      await conn.end()
    }
  })

  it('TLS that cannot be opened or verified is P1011', async () => {
    const params: Record<string, string> = provider === 'postgresql' ? { sslmode: 'verify-full' } : { sslaccept: 'strict' }
    expectCode(await attempt(withParams(serverUrl(), params)), 'P1011', /Error opening a TLS connection/)
  })

  it('a closed port is P1001 naming host and port', async () => {
    const url = new URL(serverUrl())
    url.port = '1'
    expectCode(await attempt(url.toString()), 'P1001', /Can't reach database server at 127\.0\.0\.1:1/)
  })

  it('calls cut off by close() reject with the closed-adapter error, not a connection code', async () => {
    const db = await freshAdapter({ connection_limit: '1' })
    await db.connect()
    const calls = Array.from({ length: 50 }, () => db.findAgentById('x'))
    await db.close()
    for (const s of await Promise.allSettled(calls)) {
      if (s.status === 'rejected') {
        expect(s.reason.message).toMatch(/closed/)
        expect(s.reason.code).not.toBe('P1001')
      }
    }
  })
})
