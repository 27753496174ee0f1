// Logs, events, slow calls and metrics: Prisma's `log` option and `$on` shapes (compared with
// Prisma 7's own events on SQLite), secrets kept out of every event, and metrics() after real
// load on the provider under test.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createAdapter } from '../index.js'
import { dropFreshDatabases, freshUrl, make, onServer, provider, uid } from './fixtures'
import { clientDirFor } from './parity/prisma-client.mjs'

const require = createRequire(import.meta.url)
const adapters: any[] = []

async function open(options: Record<string, unknown> = {}, params: Record<string, string> = {}) {
  const adapter: any = createAdapter(await freshUrl(params), options as any)
  adapters.push(adapter)
  // Connected first: a transaction's maxWait (2 s) would otherwise include creating every table.
  await adapter.connect()
  return adapter
}

afterEach(async () => {
  for (const adapter of adapters.splice(0)) await adapter.close()
  await dropFreshDatabases()
  vi.restoreAllMocks()
})

const EVENT_LEVELS = ['query', 'info', 'warn', 'error'].map((level) => ({ emit: 'event', level }))

function collect(adapter: any, levels = ['query', 'info', 'warn', 'error']) {
  const seen: Record<string, any[]> = { query: [], info: [], warn: [], error: [] }
  for (const level of levels) adapter.$on(level, (e: any) => seen[level].push(e))
  return seen
}

describe('query events', () => {
  it("have Prisma 7's shape: timestamp, duration, query, params, target", async () => {
    const adapter = await open({ log: [{ emit: 'event', level: 'query' }] })
    const seen = collect(adapter, ['query'])
    const user = make.user()
    await adapter.createUser(user)
    await adapter.findUserByEmail(user.email)
    expect(seen.query.length).toBeGreaterThanOrEqual(2)
    for (const e of seen.query) {
      expect(Object.keys(e)).toEqual(['timestamp', 'duration', 'query', 'params', 'target'])
      expect(e.timestamp).toBeInstanceOf(Date)
      expect(typeof e.duration).toBe('number')
      expect(e.duration).toBeGreaterThanOrEqual(0)
      expect(typeof e.query).toBe('string')
      expect(Array.isArray(JSON.parse(e.params))).toBe(true)
      expect(e.target).toBe('kavach-native')
    }
    const read = seen.query[seen.query.length - 1]
    expect(read.query).toMatch(/^SELECT .*kavach_users/)
    expect(read.query).not.toContain(user.email)
    expect(JSON.parse(read.params)).toContain(user.email)
  })

  it('are not emitted unless the log option names the level (as Prisma)', async () => {
    const adapter = await open()
    const seen = collect(adapter)
    await adapter.createUser(make.user())
    await adapter.createUser({ ...make.user(), id: 'dup' })
    await adapter.createUser({ ...make.user(), id: 'dup' }).catch(() => {})
    expect(seen).toEqual({ query: [], info: [], warn: [], error: [] })
  })

  it("print to stdout with the level's name, as Prisma's `log: ['query']`", async () => {
    const printed: string[] = []
    vi.spyOn(console, 'log').mockImplementation((text: string) => void printed.push(text))
    const adapter = await open({ log: ['query'] })
    const seen = collect(adapter, ['query'])
    await adapter.findUserById('nobody')
    expect(printed.some((line) => /^kavach:query SELECT .*kavach_users/.test(line))).toBe(true)
    // `$on` listeners hear a level printed to stdout too, as Prisma's do.
    expect(seen.query.length).toBe(1)
  })

  it('show a transaction as BEGIN, its statements and COMMIT (ROLLBACK when it throws)', async () => {
    const adapter = await open({ log: [{ emit: 'event', level: 'query' }] })
    const seen = collect(adapter, ['query'])
    await adapter.transaction(async (tx: any) => {
      await tx.createUser(make.user())
    })
    const queries = seen.query.map((e) => e.query)
    expect(queries[0]).toBe('BEGIN')
    expect(queries[queries.length - 1]).toBe('COMMIT')
    expect(queries.some((q) => /INSERT INTO .*kavach_users/.test(q))).toBe(true)
    seen.query.length = 0
    await expect(adapter.transaction(async () => Promise.reject(new Error('no')))).rejects.toThrow('no')
    expect(seen.query.map((e) => e.query)).toEqual(['BEGIN', 'ROLLBACK'])
  })
})

describe('info, warn and error events', () => {
  it("'error' for a failed call, with its message; 'info' once connected", async () => {
    const adapter = await open({ log: EVENT_LEVELS })
    const seen = collect(adapter)
    const user = make.user()
    await adapter.createUser(user)
    const failure = await adapter.createUser({ ...make.user(), id: user.id }).catch((e: any) => e)
    expect(failure.code).toBe('P2002')
    expect(seen.error).toHaveLength(1)
    expect(Object.keys(seen.error[0])).toEqual(['timestamp', 'message', 'target'])
    expect(seen.error[0].message).toBe(failure.message)
    expect(seen.error[0].target).toBe('createUser')
    expect(seen.info).toHaveLength(1)
    expect(seen.info[0].message).toContain(provider)
    if (onServer) expect(seen.info[0].message).toMatch(/pool of at most \d+ connections/)
  })

  it("slowQueryMs: a 'warn' event naming the method, its slowest statement and the duration", async () => {
    const adapter = await open({ log: [{ emit: 'event', level: 'warn' }], slowQueryMs: 0 })
    const seen = collect(adapter, ['warn'])
    const user = make.user()
    await adapter.createUser(user)
    await adapter.findUserByEmail(user.email)
    expect(seen.warn).toHaveLength(2)
    const [, read] = seen.warn
    expect(read.method).toBe('findUserByEmail')
    expect(read.target).toBe('findUserByEmail')
    expect(read.query).toMatch(/^SELECT .*kavach_users/)
    expect(typeof read.duration).toBe('number')
    expect(read.message).toContain('findUserByEmail')
    expect(read.message).toContain(read.query)
    expect(read.statements.length).toBeGreaterThanOrEqual(1)
  })

  it('slowQueryMs above every call: no warning', async () => {
    const adapter = await open({ log: [{ emit: 'event', level: 'warn' }], slowQueryMs: 3_600_000 })
    const seen = collect(adapter, ['warn'])
    await adapter.findUserById('nobody')
    expect(seen.warn).toEqual([])
  })

  it('refuses a malformed log option, as createAdapter refuses other options', async () => {
    expect(() => createAdapter(':memory:', { log: ['queries'] } as any)).toThrow(/unknown level "queries"/)
    expect(() => createAdapter(':memory:', { log: [{ emit: 'file', level: 'query' }] } as any)).toThrow(/unknown emit/)
    expect(() => createAdapter(':memory:', { slowQueryMs: -1 } as any)).toThrow(/slowQueryMs/)
    const adapter: any = createAdapter(':memory:')
    expect(() => adapter.$on('queries', () => {})).toThrow(/unknown event/)
    await adapter.close()
  })

  it("a listener that throws does not fail the call", async () => {
    const adapter = await open({ log: [{ emit: 'event', level: 'query' }] })
    vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    adapter.$on('query', () => {
      throw new Error('listener bug')
    })
    await expect(adapter.findUserById('nobody')).resolves.toBeNull()
  })
})

/** Every secret value a KavachOS flow binds, written and looked up through the adapter. */
async function secretFlow(adapter: any) {
  const secrets = {
    tokenHash: `tok-${uid('secret')}-hash`,
    keyHash: `key-${uid('secret')}-hash`,
    totp: `totp-${uid('secret')}-seed`,
    code: `code-${uid('secret')}`,
  }
  const user = make.user()
  await adapter.createUser(user)
  const agent = make.agent({ ownerId: user.id, tokenHash: secrets.tokenHash })
  await adapter.createAgent(agent)
  expect((await adapter.findAgentByTokenHash(secrets.tokenHash)).id).toBe(agent.id)
  await adapter.createApiKey({ id: uid('key'), userId: user.id, name: 'ci', keyHash: secrets.keyHash, keyPrefix: 'kv_', permissions: ['read'], createdAt: new Date() })
  expect(await adapter.findApiKeyByHash(secrets.keyHash)).not.toBeNull()
  await adapter.upsertTotp({ userId: user.id, secret: secrets.totp, backupCodes: [secrets.code], createdAt: new Date(), updatedAt: new Date() })
  // A duplicate token hash: the error event and message must not echo it either.
  await adapter.createAgent(make.agent({ id: agent.id, tokenHash: secrets.tokenHash })).catch(() => {})
  return secrets
}

describe('secrets', () => {
  it('no secret field value or URL password in any event, unless logSecrets', async () => {
    // On PostgreSQL, a password the server ignores (trust authentication).
    let url = await freshUrl()
    const password = 'Pw-never-logged-42'
    if (provider === 'postgresql') {
      const u = new URL(url)
      u.password = password
      url = u.toString()
    }
    const everything: unknown[] = []
    const printed: string[] = []
    for (const fn of ['log', 'info', 'warn', 'error'] as const) vi.spyOn(console, fn).mockImplementation((text: string) => void printed.push(text))
    const adapter: any = createAdapter(url, { log: [...EVENT_LEVELS, 'query', 'info', 'warn', 'error'], slowQueryMs: 0 } as any)
    adapters.push(adapter)
    for (const level of ['query', 'info', 'warn', 'error']) adapter.$on(level, (e: unknown) => everything.push(e))
    const secrets = await secretFlow(adapter)
    const text = JSON.stringify(everything) + printed.join('\n') + JSON.stringify(adapter.metrics()) + adapter.metrics({ format: 'prometheus' })
    expect(everything.length).toBeGreaterThan(10)
    expect(text).toContain('[redacted]')
    for (const value of Object.values(secrets)) expect(text).not.toContain(value)
    expect(text).not.toContain(password)

    // The same flow with logSecrets shows them: the scan above can fail.
    const revealing: any = createAdapter(await freshUrl(), { log: [{ emit: 'event', level: 'query' }], logSecrets: true } as any)
    adapters.push(revealing)
    const shown: unknown[] = []
    revealing.$on('query', (e: unknown) => shown.push(e))
    const revealed = await secretFlow(revealing)
    expect(JSON.stringify(shown)).toContain(revealed.tokenHash)
    expect(JSON.stringify(shown)).toContain(revealed.keyHash)
  })
})

function counter(snapshot: any, key: string, labels: Record<string, string>) {
  return snapshot.counters.find((c: any) => c.key === key && Object.entries(labels).every(([k, v]) => c.labels[k] === v))?.value
}
function gauge(snapshot: any, key: string) {
  return snapshot.gauges.find((g: any) => g.key === key)?.value
}
function histogram(snapshot: any, key: string, labels: Record<string, string> = {}) {
  return snapshot.histograms.find((h: any) => h.key === key && Object.entries(labels).every(([k, v]) => h.labels[k] === v))?.value
}

describe('metrics()', () => {
  it('counts calls, errors by code and latency by method under concurrent load', async () => {
    const adapter = await open({}, onServer ? { connection_limit: '4' } : {})
    const users = Array.from({ length: 120 }, () => make.user())
    await Promise.all(users.map((u) => adapter.createUser(u)))
    await Promise.all(users.map((u) => adapter.findUserByEmail(u.email)))
    const failures = await Promise.all(users.slice(0, 7).map((u) => adapter.createUser({ ...make.user(), id: u.id }).catch((e: any) => e.code)))
    expect(failures).toEqual(Array(7).fill('P2002'))
    const snapshot = adapter.metrics()
    expect(counter(snapshot, 'kavach_calls_total', { method: 'createUser' })).toBe(127)
    expect(counter(snapshot, 'kavach_calls_total', { method: 'findUserByEmail' })).toBe(120)
    expect(counter(snapshot, 'kavach_call_errors_total', { method: 'createUser' })).toBe(7)
    expect(counter(snapshot, 'kavach_call_errors_total', { method: 'findUserByEmail' })).toBe(0)
    expect(counter(snapshot, 'kavach_call_errors_by_code_total', { method: 'createUser', code: 'P2002' })).toBe(7)
    const latency = histogram(snapshot, 'kavach_call_duration_ms', { method: 'findUserByEmail' })
    expect(latency.count).toBe(120)
    expect(latency.buckets.reduce((n: number, [, c]: [number, number]) => n + c, 0)).toBe(120)
    expect(latency.buckets[latency.buckets.length - 1][0]).toBeNull()
    expect(latency.sum).toBeGreaterThan(0)
    if (onServer) {
      expect(snapshot.gauges.every((g: any) => g.labels.provider === provider)).toBe(true)
      expect(gauge(snapshot, 'kavach_pool_connections_max')).toBe(4)
      expect(gauge(snapshot, 'kavach_pool_connections_open')).toBeGreaterThanOrEqual(1)
      expect(gauge(snapshot, 'kavach_pool_connections_open')).toBeLessThanOrEqual(4)
      expect(gauge(snapshot, 'kavach_pool_connections_busy')).toBe(0)
      expect(gauge(snapshot, 'kavach_pool_connections_idle')).toBe(gauge(snapshot, 'kavach_pool_connections_open'))
      expect(gauge(snapshot, 'kavach_pool_waiters')).toBe(0)
    } else {
      expect(gauge(snapshot, 'kavach_sqlite_writer_queue')).toBe(0)
      // Every write outside a transaction went through a group commit of some size (batches
      // of reads alone commit nothing).
      const batches = histogram(snapshot, 'kavach_sqlite_group_commit_size')
      expect(batches.sum).toBe(127)
      expect(batches.count).toBeLessThanOrEqual(127)
    }
  })

  it('pool waiters and connections in use while a transaction holds the only connection', async () => {
    if (!onServer) {
      // SQLite: calls outside the transaction queue behind it on the writer.
      const adapter = await open()
      let release!: () => void
      const held = new Promise<void>((r) => (release = r))
      const tx = adapter.transaction(async (t: any) => {
        await t.findUserById('x')
        await held
      })
      await new Promise((r) => setTimeout(r, 0))
      // The writer takes jobs off its queue and holds those blocked behind the transaction
      // itself: the gauge counts only jobs it has not taken yet, so it is not asserted here.
      const waiting = adapter.createUser(make.user())
      release()
      await tx
      await waiting
      expect(gauge(adapter.metrics(), 'kavach_sqlite_writer_queue')).toBe(0)
      return
    }
    const adapter = await open({}, { connection_limit: '1' })
    await adapter.connect()
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    let inside!: () => void
    const entered = new Promise<void>((r) => (inside = r))
    const tx = adapter.transaction(async (t: any) => {
      await t.findUserById('x')
      inside()
      await held
    })
    await entered
    expect(gauge(adapter.metrics(), 'kavach_pool_connections_busy')).toBe(1)
    const waiting = adapter.findUserById('y')
    while (gauge(adapter.metrics(), 'kavach_pool_waiters') < 1) await new Promise((r) => setTimeout(r, 5))
    expect(gauge(adapter.metrics(), 'kavach_pool_waiters')).toBe(1)
    release()
    await tx
    await waiting
    const after = adapter.metrics()
    expect(gauge(after, 'kavach_pool_waiters')).toBe(0)
    expect(gauge(after, 'kavach_pool_connections_busy')).toBe(0)
  })

  it("renders Prometheus' text format, with globalLabels", async () => {
    const adapter = await open()
    await adapter.createUser(make.user())
    await adapter.findUserById('nobody')
    const text: string = adapter.metrics({ format: 'prometheus', globalLabels: { app: 'auth' } })
    expect(text).toContain('# TYPE kavach_calls_total counter')
    expect(text).toContain('kavach_calls_total{app="auth",method="createUser"} 1')
    expect(text).toContain('# TYPE kavach_call_duration_ms histogram')
    expect(text).toMatch(/kavach_call_duration_ms_bucket\{app="auth",method="findUserById",le="\+Inf"\} 1\n/)
    expect(text).toMatch(/kavach_call_duration_ms_count\{app="auth",method="findUserById"\} 1\n/)
    // Buckets are cumulative: never decreasing.
    const buckets = [...text.matchAll(/kavach_call_duration_ms_bucket\{app="auth",method="createUser",le="[^"]+"\} (\d+)/g)].map((m) => Number(m[1]))
    expect(buckets.length).toBeGreaterThan(2)
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
    expect(() => adapter.metrics({ format: 'xml' })).toThrow(/format/)
  })

  it('counts calls inside transactions too', async () => {
    const adapter = await open()
    await adapter.transaction(async (tx: any) => {
      await tx.createUser(make.user())
      await tx.findUserById('nobody')
    })
    const snapshot = adapter.metrics()
    expect(counter(snapshot, 'kavach_calls_total', { method: 'createUser' })).toBe(1)
    expect(counter(snapshot, 'kavach_calls_total', { method: 'findUserById' })).toBe(1)
  })
})

// Prisma 7 as the oracle: @kavachos/prisma on a PrismaClient with the same log option, the same
// calls; each event's keys and value types must match.
describe.runIf(provider === 'sqlite')("against Prisma 7's own events", () => {
  it('query and error events have the same keys, order and types', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-observe-'))
    const file = path.join(dir, 'db.sqlite')
    const setup: any = createAdapter(`file:${file}`)
    await setup.connect()
    await setup.close()
    const { PrismaClient } = require(clientDirFor('sqlite'))
    const { PrismaBetterSqlite3 } = require('@prisma/adapter-better-sqlite3')
    const { createPrismaAdapter } = await import('@kavachos/prisma')
    const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }), log: EVENT_LEVELS })
    const theirs = collect(prisma)
    const native: any = createAdapter(`file:${file}`, { log: EVENT_LEVELS } as any)
    adapters.push(native)
    const ours = collect(native)
    try {
      for (const [adapter, prefix] of [
        [createPrismaAdapter(prisma), 'p'],
        [native, 'n'],
      ] as const) {
        const user = make.user({ id: `${prefix}-user`, email: `${prefix}@example.com` })
        await (adapter as any).createUser(user)
        await (adapter as any).findUserByEmail(user.email)
        await (adapter as any).createUser(user).catch(() => {})
      }
    } finally {
      await prisma.$disconnect()
    }
    const shape = (e: any) => Object.entries(e).map(([k, v]) => [k, v instanceof Date ? 'Date' : typeof v])
    expect(theirs.query.length).toBeGreaterThan(0)
    expect(ours.query.length).toBeGreaterThan(0)
    const theirShape = shape(theirs.query[0])
    for (const e of [...theirs.query, ...ours.query]) {
      // Prisma names its engine as target ('ClientEngine'); the adapter names itself.
      expect(shape(e)).toEqual(theirShape)
      expect(Array.isArray(JSON.parse(e.params))).toBe(true)
    }
    // The same bound values for the same lookup.
    const lookup = (events: any[], email: string) => events.find((e) => e.query.startsWith('SELECT') && e.params.includes(email))
    expect(JSON.parse(lookup(ours.query, 'n@example.com').params)).toContain('n@example.com')
    expect(JSON.parse(lookup(theirs.query, 'p@example.com').params)).toContain('p@example.com')
    fs.rmSync(dir, { recursive: true, force: true })
  })
})

// Through the app's own Prisma client: the same events, spans and metrics from the adapter's
// calls (the client's own query events, if it logs, show the same statements too).
describe.runIf(provider === 'sqlite')('through a Prisma client', () => {
  it('query events, secret redaction and metrics', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-observe-'))
    const file = path.join(dir, 'db.sqlite')
    const setup: any = createAdapter(`file:${file}`)
    await setup.connect()
    await setup.close()
    const { PrismaClient } = require(clientDirFor('sqlite'))
    const { PrismaBetterSqlite3 } = require('@prisma/adapter-better-sqlite3')
    const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) })
    try {
      const adapter: any = createAdapter(prisma, { log: EVENT_LEVELS, slowQueryMs: 0 } as any)
      const seen = collect(adapter)
      const secrets = await secretFlow(adapter)
      expect(seen.query.length).toBeGreaterThan(3)
      for (const e of seen.query) expect(Object.keys(e)).toEqual(['timestamp', 'duration', 'query', 'params', 'target'])
      expect(seen.warn.length).toBeGreaterThan(3)
      expect(seen.error.length).toBeGreaterThanOrEqual(1)
      const text = JSON.stringify(seen)
      expect(text).toContain('[redacted]')
      for (const value of Object.values(secrets)) expect(text).not.toContain(value)
      const snapshot = adapter.metrics()
      expect(counter(snapshot, 'kavach_calls_total', { method: 'createAgent' })).toBe(2)
      expect(counter(snapshot, 'kavach_call_errors_by_code_total', { method: 'createAgent', code: 'P2002' })).toBe(1)
      expect(snapshot.gauges).toEqual([])
    } finally {
      await prisma.$disconnect()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
