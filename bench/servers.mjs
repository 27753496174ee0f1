// The PostgreSQL and MySQL/MariaDB half of the benchmark: a fresh schema (PostgreSQL) or database
// (MariaDB) per run, the same rows as the SQLite file, and the three contenders on one pool size:
// kavach-native, @kavachos/prisma on Prisma 7 with @prisma/adapter-pg / @prisma/adapter-mariadb,
// and the raw driver (pg Pool / mariadb pool).
import fs from 'node:fs'
import { createRequire } from 'node:module'
import * as L from './lib.mjs'

const require = createRequire(import.meta.url)

/** Server-side text of a UTC instant, as Prisma stores it in TIMESTAMP(3) / DATETIME(3). */
const serverTime = (date) => date.toISOString().replace('T', ' ').replace('Z', '')

const AGENT_COLS = ['id', 'owner_id', 'tenant_id', 'name', 'type', 'status', 'token_hash', 'token_prefix', 'expires_at',
  'last_active_at', 'metadata', 'created_at', 'updated_at']
const LOG_COLS = ['id', 'agent_id', 'user_id', 'action', 'resource', 'parameters', 'result', 'reason', 'duration_ms',
  'tokens_cost', 'ip', 'user_agent', 'timestamp']
const SCORE_COLS = ['agent_id', 'score', 'level', 'factors', 'computed_at']
const PERMISSION_COLS = ['id', 'agent_id', 'resource', 'actions', 'constraints', 'created_at']

/** The seeded rows, as arrays in the column orders above (the same data as lib.mjs `seed`). */
function* seedRows(rows) {
  const { owners } = L.dataShape(rows)
  for (let i = 0; i < rows; i++) {
    const created = serverTime(new Date(L.BASE_TIME + i * 1000))
    yield {
      agent: [L.agentId(i), L.ownerId(i % owners), i % 3 === 0 ? 'tenant-1' : null, `agent ${i}`, 'autonomous', 'active',
        L.tokenHash(i), 'kv_', serverTime(new Date(L.BASE_TIME + 365 * 86_400_000)), null,
        JSON.stringify({ team: `team-${i % 7}`, n: i, tags: ['a', 'b'] }), created, created],
      log: [`log-${L.pad(i, 6)}`, L.agentId(i % L.AUDIT_AGENTS), `user-${i % 50}`, i % 2 ? 'read' : 'write',
        `mcp:github:repo-${i % 13}`, JSON.stringify({ path: `/v1/items/${i}`, q: 'x' }), i % 10 ? 'allowed' : 'denied',
        i % 10 ? null : 'policy', 5 + (i % 40), i % 4 ? 100 + i : null, '10.0.0.1', 'bench/1.0',
        serverTime(new Date(L.BASE_TIME + i * 60_000))],
      score: [L.agentId(i), 50 + (i % 50), 'medium', JSON.stringify({ age: 0.5, incidents: 0 }), serverTime(new Date(L.BASE_TIME))],
    }
  }
}

const json = (v) => (v === undefined || v === null ? null : JSON.stringify(v))
const time = (v) => (v == null ? null : serverTime(v instanceof Date ? v : new Date(v)))
// `enc` encodes a Json value: text for drivers that bind it as text, the value itself for postgres.js
// (which serialises json/jsonb parameters by their type).
const agentValues = (a, enc = json) => [a.id, a.ownerId, a.tenantId ?? null, a.name, a.type, a.status ?? 'active', a.tokenHash, a.tokenPrefix,
  time(a.expiresAt), time(a.lastActiveAt), enc(a.metadata), time(a.createdAt), time(a.updatedAt)]
const logValues = (l, enc = json) => [l.id, l.agentId, l.userId, l.action, l.resource, enc(l.parameters), l.result, l.reason ?? null,
  Math.trunc(l.durationMs), l.tokensCost ?? null, l.ip ?? null, l.userAgent ?? null, time(l.timestamp)]
const scoreValues = (t, enc = json) => [t.agentId, t.score, t.level, enc(t.factors), time(t.computedAt)]
const permissionValues = (p, enc = json) => [p.id, p.agentId, p.resource, enc(p.actions), enc(p.constraints), time(p.createdAt)]

/** A name for this run's schema / database: unique, lower case, safe unquoted in both servers. */
const APP = 'kavach-bench-'

const runName = () => `kavach_bench_${process.pid}_${Date.now().toString(36)}`

// ---------------------------------------------------------------- server CPU

const TICK_NS = 1e9 / 100 // /proc reports clock ticks (USER_HZ, 100 on Linux)

/** CPU time (user + system, ns) of a process, or undefined when it is gone. */
function processCpu(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * TICK_NS // utime, stime (fields 14, 15)
  } catch { return undefined }
}

/**
 * PostgreSQL: a meter of the CPU spent by the backends serving this benchmark's pools (found by
 * application_name in pg_stat_activity; the server runs on this machine). A call returns the
 * running total over every backend seen so far, so a backend that appears mid-phase counts whole.
 */
function pgBackendCpuMeter(admin, appPrefix) {
  const last = new Map()
  return async () => {
    const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1', [`${appPrefix}%`])
    for (const { pid } of rows) {
      const ns = processCpu(pid)
      if (ns !== undefined) last.set(pid, ns)
    }
    let total = 0
    for (const ns of last.values()) total += ns
    return total
  }
}

/** MySQL/MariaDB: one server process with a thread per connection; its whole CPU time. */
function processCpuMeter(names) {
  return async () => {
    let ns = 0
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const comm = fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim()
        if (names.includes(comm)) ns += processCpu(pid) ?? 0
      } catch {}
    }
    return ns
  }
}

// ---------------------------------------------------------------- PostgreSQL

/** `--pg URL`: creates schema NAME in the URL's database, seeds it; returns the contenders and the rest. */
export async function postgres(baseUrl, { rows, pool, log, clientDir }) {
  const pg = require('pg')
  const schema = runName()
  const url = new URL(baseUrl)
  const admin = new pg.Client({ connectionString: baseUrl })
  await admin.connect()
  const dropSchema = async () => { await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) }
  try {
    log(`creating schema ${schema} and seeding ${rows} agents, audit logs and trust scores ...`)
    await admin.query(`CREATE SCHEMA "${schema}"`)
    await admin.query(`SET search_path TO "${schema}"`)
    for (const statement of L.native.schemaDdl('postgresql')) await admin.query(statement)
    await bulkInsert(rows, 1000, async (table, cols, batch) => {
      const values = []
      const tuples = batch.map((r) => `(${r.map((v) => { values.push(v); return `$${values.length}` }).join(',')})`)
      await admin.query(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${tuples.join(',')}`, values)
    })
    await admin.query('ANALYZE')
  } catch (e) { await dropSchema().catch(() => {}); await admin.end(); throw e }

  const info = {}
  for (const name of ['server_version', 'synchronous_commit', 'fsync', 'shared_buffers', 'max_connections']) {
    info[name] = (await admin.query(`SHOW ${name}`)).rows[0][name]
  }

  // kavach-native: the same URL with this run's schema and the pool size.
  const nativeUrl = new URL(baseUrl)
  nativeUrl.searchParams.set('schema', schema)
  nativeUrl.searchParams.set('connection_limit', String(pool))
  nativeUrl.searchParams.set('application_name', `${APP}native`)
  // node-postgres (raw and Prisma's adapter) does not use TLS unless the URL asks for it, while the
  // native adapter's default is sslmode=prefer (it negotiates TLS when the server offers it): without
  // an sslmode in the URL, all three run without TLS.
  if (!nativeUrl.searchParams.has('sslmode')) nativeUrl.searchParams.set('sslmode', 'disable')
  const makeNative = () => L.createNative(nativeUrl.toString())

  const makePrisma = async () => {
    const { PrismaClient } = require(clientDir)
    const { PrismaPg } = require('@prisma/adapter-pg')
    const { createPrismaAdapter } = await import('@kavachos/prisma')
    // search_path too: the bridge's raw statements run unqualified on this client.
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: baseUrl, max: pool, application_name: `${APP}prisma`, options: `-c search_path=${schema}` }, { schema }) })
    await prisma.$connect()
    const adapter = createPrismaAdapter(prisma)
    adapter.prisma = prisma
    adapter.close = () => prisma.$disconnect()
    return adapter
  }

  const sql = statements('postgresql')
  // The raw driver: a pg Pool of the same size, search_path set to the schema, plain
  // parameterised queries (unnamed statements, as pool.query(text, values) sends them).
  const makeRaw = () => {
    const p = new pg.Pool({ connectionString: baseUrl, max: pool, options: `-c search_path=${schema}`, application_name: `${APP}raw` })
    return driverContender(sql, {
      rows: async (text, values) => (await p.query(text, values)).rows,
      // Interactive: one pooled client holds BEGIN ... COMMIT across the awaits.
      interactive: async (body) => {
        const client = await p.connect()
        try {
          await client.query('BEGIN')
          const result = await body(async (text, values) => (await client.query(text, values)).rows)
          await client.query('COMMIT')
          return result
        } catch (e) {
          await client.query('ROLLBACK').catch(() => {})
          throw e
        } finally { client.release() }
      },
      close: () => p.end(),
    })
  }

  // The peer: postgres.js, a pool of the same size; it prepares named statements (its default)
  // and pipelines queries on each connection.
  const makePeer = () => {
    const postgresJs = require('postgres')
    const db = postgresJs(baseUrl, { max: pool, connection: { search_path: schema, application_name: `${APP}peer` }, types: {}, onnotice: () => {} })
    return driverContender(sql, {
      rows: (text, values) => db.unsafe(text, values),
      json: (v) => v ?? null,
      interactive: (body) => db.begin((tx) => body((text, values) => tx.unsafe(text, values))),
      close: () => db.end({ timeout: 5 }),
    })
  }

  const cleanup = async () => {
    await admin.query(`DELETE FROM kavach_audit_logs WHERE id LIKE 'bench-log-%';
      DELETE FROM kavach_permissions WHERE agent_id LIKE 'bench-agent-%';
      DELETE FROM kavach_agents WHERE id LIKE 'bench-agent-%';`)
  }

  return {
    provider: 'postgresql',
    where: `schema ${schema} of ${redact(url)}`,
    ddl: "schemaDdl('postgresql')",
    make: { native: makeNative, prisma: makePrisma, raw: makeRaw, peer: makePeer },
    cleanup,
    serverCpuNs: pgBackendCpuMeter(admin, APP),
    serverCpuNote: 'Server CPU = user + system time (/proc/<pid>/stat, 10 ms ticks) of the PostgreSQL backends serving the three pools ' +
      '(found by application_name) during the load phase, per call; background writers not included.',
    teardown: async () => { await dropSchema(); await admin.end() },
    machineLine: `PostgreSQL ${info.server_version} on this machine (TCP ${url.hostname}:${url.port || 5432}); ` +
      `synchronous_commit ${info.synchronous_commit}, fsync ${info.fsync}, shared_buffers ${info.shared_buffers}, max_connections ${info.max_connections}`,
    versionsLine: ['@prisma/adapter-pg', 'pg'],
    poolLine: `pool of ${pool} connections for each contender: native \`connection_limit=${pool}\`, Prisma \`new PrismaPg({ max: ${pool} }, { schema })\`, raw \`new pg.Pool({ max: ${pool} })\``,
    rawLine: 'Raw = a pg Pool (pg ' + L.packageVersion('pg') + ') with search_path set to the schema and the same SQL as plain parameterised ' +
      'queries (unnamed statements, no prepared-statement cache); rows as pg decodes them (Date, parsed JSONB); its transaction is ' +
      'interactive (one pooled client, BEGIN … COMMIT).',
  }
}

// ---------------------------------------------------------------- MySQL / MariaDB

/** `--mysql URL`: creates database NAME on the URL's server, seeds it; returns the contenders and the rest. */
export async function mysql(baseUrl, { rows, pool, log, clientDir }) {
  const mariadb = require('mariadb')
  const database = runName()
  const url = new URL(baseUrl)
  const conn = {
    host: url.hostname, port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'), password: decodeURIComponent(url.password || ''),
  }
  const admin = await mariadb.createConnection({ ...conn, multipleStatements: true })
  const dropDatabase = async () => { await admin.query(`DROP DATABASE IF EXISTS \`${database}\``) }
  try {
    log(`creating database ${database} and seeding ${rows} agents, audit logs and trust scores ...`)
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
    await admin.query(`USE \`${database}\``)
    for (const statement of L.native.schemaDdl('mysql')) await admin.query(statement)
    await bulkInsert(rows, 1000, async (table, cols, batch) => {
      await admin.batch(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(',')})`, batch)
    })
    await admin.query('ANALYZE TABLE kavach_agents, kavach_audit_logs, kavach_trust_scores')
  } catch (e) { await dropDatabase().catch(() => {}); await admin.end(); throw e }

  const [vars] = await admin.query(`SELECT VERSION() AS version, @@innodb_flush_log_at_trx_commit AS flush,
    @@innodb_buffer_pool_size AS buffer, @@max_connections AS maxc, @@log_bin AS binlog`)

  const nativeUrl = new URL(baseUrl)
  nativeUrl.pathname = `/${database}`
  nativeUrl.searchParams.set('connection_limit', String(pool))
  const makeNative = () => L.createNative(nativeUrl.toString())

  const makePrisma = async () => {
    const { PrismaClient } = require(clientDir)
    const { PrismaMariaDb } = require('@prisma/adapter-mariadb')
    const { createPrismaAdapter } = await import('@kavachos/prisma')
    const prisma = new PrismaClient({ adapter: new PrismaMariaDb({ ...conn, database, connectionLimit: pool }, { database }) })
    await prisma.$connect()
    const adapter = createPrismaAdapter(prisma)
    adapter.prisma = prisma
    adapter.close = () => prisma.$disconnect()
    return adapter
  }

  const sql = statements('mysql')
  // The raw driver: a mariadb pool of the same size, binary protocol (pool.execute, which keeps
  // prepared statements per connection), MariaDB's INSERT ... RETURNING for the writes.
  const makeRaw = () => {
    const p = mariadb.createPool({ ...conn, database, connectionLimit: pool })
    return driverContender(sql, {
      rows: async (text, values) => [...(await p.execute(text, values))],
      interactive: async (body) => {
        const c = await p.getConnection()
        try {
          await c.beginTransaction()
          const result = await body(async (text, values) => [...(await c.execute(text, values))])
          await c.commit()
          return result
        } catch (e) {
          await c.rollback().catch(() => {})
          throw e
        } finally { await c.release() }
      },
      close: () => p.end(),
    })
  }

  // The peer: mysql2, a pool of the same size, `execute` (binary protocol, statements prepared
  // and cached per connection), the same SQL.
  const makePeer = () => {
    const mysql2 = require('mysql2/promise')
    const p = mysql2.createPool({ ...conn, database, connectionLimit: pool, dateStrings: false, timezone: 'Z' })
    return driverContender(sql, {
      rows: async (text, values) => (await p.execute(text, values))[0],
      interactive: async (body) => {
        const c = await p.getConnection()
        try {
          await c.beginTransaction()
          const result = await body(async (text, values) => (await c.execute(text, values))[0])
          await c.commit()
          return result
        } catch (e) {
          await c.rollback().catch(() => {})
          throw e
        } finally { c.release() }
      },
      close: () => p.end(),
    })
  }

  const cleanup = async () => {
    await admin.query(`DELETE FROM kavach_audit_logs WHERE id LIKE 'bench-log-%';
      DELETE FROM kavach_permissions WHERE agent_id LIKE 'bench-agent-%';
      DELETE FROM kavach_agents WHERE id LIKE 'bench-agent-%';`)
  }

  return {
    provider: 'mysql',
    where: `database ${database} on ${redact(url)}`,
    ddl: "schemaDdl('mysql')",
    make: { native: makeNative, prisma: makePrisma, raw: makeRaw, peer: makePeer },
    cleanup,
    serverCpuNs: processCpuMeter(['mariadbd', 'mysqld']),
    serverCpuNote: 'Server CPU = user + system time (/proc/<pid>/stat, 10 ms ticks) of the whole mariadbd process during the load phase, ' +
      'per call (it has a thread per connection and no performance_schema here to tell them apart): work of any other client of ' +
      'the server at that time is included.',
    teardown: async () => { await dropDatabase(); await admin.end() },
    machineLine: `${/mariadb/i.test(vars.version) ? 'MariaDB' : 'MySQL'} ${vars.version} on this machine (TCP ${url.hostname}:${url.port || 3306}); ` +
      `innodb_flush_log_at_trx_commit ${vars.flush}, binary log ${Number(vars.binlog) ? 'on' : 'off'}, ` +
      `innodb_buffer_pool_size ${Math.round(Number(vars.buffer) / 2 ** 20)} MiB, max_connections ${vars.maxc}`,
    versionsLine: ['@prisma/adapter-mariadb', 'mariadb'],
    poolLine: `pool of ${pool} connections for each contender: native \`connection_limit=${pool}\`, Prisma \`new PrismaMariaDb({ connectionLimit: ${pool} })\`, raw \`mariadb.createPool({ connectionLimit: ${pool} })\``,
    rawLine: 'Raw = a mariadb pool (mariadb ' + L.packageVersion('mariadb') + ') running the same SQL with `pool.execute` (binary protocol, ' +
      'prepared statements cached per connection), writes with MariaDB\'s `INSERT … RETURNING`; rows as the driver decodes them; ' +
      'its transaction is interactive (one pooled connection, BEGIN … COMMIT).',
  }
}

// ---------------------------------------------------------------- helpers

/** The benchmark's SQL for the raw driver and the peer of a server: same statements, that dialect's placeholders. */
function statements(provider) {
  const pgStyle = provider === 'postgresql'
  const ph = (n) => Array.from({ length: n }, (_, k) => (pgStyle ? `$${k + 1}` : '?')).join(',')
  const ts = pgStyle ? '"timestamp"' : '`timestamp`'
  const upsert = pgStyle
    ? `ON CONFLICT (agent_id) DO UPDATE SET score = excluded.score, level = excluded.level, factors = excluded.factors, computed_at = excluded.computed_at`
    : `ON DUPLICATE KEY UPDATE score = VALUES(score), level = VALUES(level), factors = VALUES(factors), computed_at = VALUES(computed_at)`
  const [p1, p2, p3, p4] = pgStyle ? ['$1', '$2', '$3', '$4'] : ['?', '?', '?', '?']
  return {
    findAgentById: `SELECT ${AGENT_COLS} FROM kavach_agents WHERE id = ${p1} LIMIT 1`,
    findAgentByTokenHash: `SELECT ${AGENT_COLS} FROM kavach_agents WHERE token_hash = ${p1} LIMIT 1`,
    listAgents: `SELECT ${AGENT_COLS} FROM kavach_agents WHERE owner_id = ${p1} ORDER BY created_at DESC`,
    queryAuditLogs: `SELECT ${LOG_COLS} FROM kavach_audit_logs WHERE agent_id = ${p1} AND ${ts} >= ${p2} ORDER BY ${ts} DESC LIMIT ${p3} OFFSET ${p4}`,
    createAuditLog: `INSERT INTO kavach_audit_logs (${LOG_COLS}) VALUES (${ph(13)}) RETURNING ${LOG_COLS}`,
    upsertTrustScore: `INSERT INTO kavach_trust_scores (${SCORE_COLS}) VALUES (${ph(5)}) ${upsert} RETURNING ${SCORE_COLS}`,
    createAgent: `INSERT INTO kavach_agents (${AGENT_COLS}) VALUES (${ph(13)}) RETURNING ${AGENT_COLS}`,
    createPermission: `INSERT INTO kavach_permissions (${PERMISSION_COLS}) VALUES (${ph(6)}) RETURNING ${PERMISSION_COLS}`,
  }
}

/**
 * A plain-driver contender from the SQL above and three driver functions: `rows(text, values)`,
 * `interactive(body)` (BEGIN, body(run), COMMIT; ROLLBACK when it throws), `close()`, and optionally
 * `json(value)`, how a Json value is bound (default: as text).
 */
function driverContender(sql, driver) {
  const enc = driver.json ?? json
  const one = async (text, values) => (await driver.rows(text, values))[0] ?? null
  return {
    findAgentById: (id) => one(sql.findAgentById, [id]),
    findAgentByTokenHash: (hash) => one(sql.findAgentByTokenHash, [hash]),
    listAgents: (f) => driver.rows(sql.listAgents, [f.ownerId]),
    queryAuditLogs: (f) => driver.rows(sql.queryAuditLogs, [f.agentId, time(f.since), f.limit ?? 100, f.offset ?? 0]),
    createAuditLog: (l) => one(sql.createAuditLog, logValues(l, enc)),
    upsertTrustScore: (t) => one(sql.upsertTrustScore, scoreValues(t, enc)),
    transaction: (fn) =>
      driver.interactive((run) =>
        fn({
          createAgent: async (a) => (await run(sql.createAgent, agentValues(a, enc)))[0],
          createPermission: async (x) => (await run(sql.createPermission, permissionValues(x, enc)))[0],
        }),
      ),
    close: driver.close,
  }
}

function redact(url) {
  const u = new URL(url)
  if (u.password) u.password = '***'
  u.search = ''
  return u.toString()
}

async function bulkInsert(rows, batchSize, insert) {
  const tables = [['kavach_agents', AGENT_COLS, 'agent'], ['kavach_audit_logs', LOG_COLS, 'log'], ['kavach_trust_scores', SCORE_COLS, 'score']]
  const all = [...seedRows(rows)]
  for (const [table, cols, key] of tables) {
    for (let i = 0; i < all.length; i += batchSize) await insert(table, cols, all.slice(i, i + batchSize).map((r) => r[key]))
  }
}
