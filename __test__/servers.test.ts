// PostgreSQL and MySQL/MariaDB only: Prisma URL parameters, lost connections, a server
// that goes away and comes back (through a TCP proxy we control), pool limits.
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createAdapter } from '../index.js'
import { dropFreshDatabases, freshAdapter, lastCreated, make, provider, serverUrl, withParams } from './fixtures'

afterEach(async () => {
  await dropFreshDatabases()
})

/** Kills every server session of the given database user except our own probe. */
async function killSessions() {
  if (provider === 'postgresql') {
    const { Client } = await import('pg')
    const client = new Client({ connectionString: serverUrl() })
    await client.connect()
    const { rows } = await client.query(
      "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = 'kavach-native' AND pid <> pg_backend_pid()",
    )
    await client.end()
    return rows.length
  }
  const mysql = await import('mysql2/promise')
  const conn = await mysql.createConnection(serverUrl())
  const [rows] = (await conn.query("SELECT id FROM information_schema.processlist WHERE db LIKE 'kt\\\\_%' AND id <> CONNECTION_ID()")) as any
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
    const db = await freshAdapter({ connection_limit: '3' })
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
