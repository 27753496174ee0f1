// Shared pieces of the benchmark and the soak run: argument parsing, seeding the SQLite
// file, generating the Prisma client for the TypeScript adapter, the three contenders
// and the machine description.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.resolve(BENCH_DIR, '..')
const require = createRequire(import.meta.url)

export const native = require('../index.js')
export const Database = require('better-sqlite3')

// ---------------------------------------------------------------- arguments

/** Parses `--flag`, `--key value` and `--key=value` against a table of defaults. */
export function parseArgs(argv, spec) {
  const out = {}
  for (const [key, def] of Object.entries(spec)) out[key] = def.default
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}' (try --help)`)
    arg = arg.slice(2)
    let value
    const eq = arg.indexOf('=')
    if (eq >= 0) { value = arg.slice(eq + 1); arg = arg.slice(0, eq) }
    const key = arg.replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    const def = spec[key]
    if (!def) throw new Error(`unknown option --${arg} (try --help)`)
    if (def.type === 'flag') { out[key] = true; continue }
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) throw new Error(`--${arg} needs a value`)
    }
    out[key] = def.type === 'number' ? Number(value) : value
    if (def.type === 'number' && !Number.isFinite(out[key])) throw new Error(`--${arg} must be a number, got '${value}'`)
  }
  return out
}

export function usage(spec, head) {
  const lines = [head, '', 'Options:']
  for (const [key, def] of Object.entries(spec)) {
    const flag = '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
    const arg = def.type === 'flag' ? '' : ` <${def.type === 'number' ? 'n' : 'value'}>`
    const dflt = def.default === undefined || def.default === '' || def.type === 'flag' ? '' : ` (default: ${def.default})`
    lines.push(`  ${(flag + arg).padEnd(26)} ${def.help}${dflt}`)
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------- data set

/** Prisma's on-disk DATETIME text (FINDINGS.md a): always milliseconds, offset +00:00. */
export const stored = (date) => date.toISOString().replace('Z', '+00:00')

export const BASE_TIME = Date.UTC(2025, 0, 1)
export const AGENTS_PER_OWNER = 20
export const AUDIT_AGENTS = 100
export const AUDIT_LIMIT = 50
export const pad = (n, w = 5) => String(n).padStart(w, '0')
export const agentId = (i) => `agent-${pad(i)}`
export const ownerId = (i) => `owner-${pad(i, 4)}`
export const tokenHash = (i) => crypto.createHash('sha256').update(`kv_token_${i}`).digest('hex')

/**
 * Shape of the seeded data (n = --rows):
 *  - n agents, AGENTS_PER_OWNER per owner, so listAgents({ ownerId }) returns 20 rows;
 *  - n audit logs spread round-robin over the first AUDIT_AGENTS agents, one minute apart, so an
 *    agent has n/AUDIT_AGENTS rows and `since` = the first quarter mark leaves 3/4 of them (>= 50);
 *  - n trust scores, one per agent.
 * The write operations use their own agent / owner ids, so the read results stay the same size.
 */
export function dataShape(rows) {
  const owners = Math.max(1, Math.floor(rows / AGENTS_PER_OWNER))
  const perAgentLogs = Math.floor(rows / AUDIT_AGENTS)
  const since = new Date(BASE_TIME + Math.floor(rows / 4) * 60_000)
  return { rows, owners, perAgentLogs, since }
}

export function removeDb(file) {
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(file + suffix, { force: true })
}

/** Creates the file from scratch: the native adapter's own DDL, WAL, and the rows. */
export function seed(file, rows) {
  removeDb(file)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  for (const statement of native.schemaDdl('sqlite')) db.exec(statement)
  const insertAgent = db.prepare(`INSERT INTO kavach_agents (id, owner_id, tenant_id, name, type, status, token_hash, token_prefix,
    expires_at, last_active_at, metadata, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
  const insertLog = db.prepare(`INSERT INTO kavach_audit_logs (id, agent_id, user_id, action, resource, parameters, result, reason,
    duration_ms, tokens_cost, ip, user_agent, timestamp) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
  const insertScore = db.prepare(`INSERT INTO kavach_trust_scores (agent_id, score, level, factors, computed_at) VALUES (?,?,?,?,?)`)
  const { owners } = dataShape(rows)
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      const created = stored(new Date(BASE_TIME + i * 1000))
      insertAgent.run(agentId(i), ownerId(i % owners), i % 3 === 0 ? 'tenant-1' : null, `agent ${i}`, 'autonomous', 'active',
        tokenHash(i), 'kv_', stored(new Date(BASE_TIME + 365 * 86_400_000)), null,
        JSON.stringify({ team: `team-${i % 7}`, n: i, tags: ['a', 'b'] }), created, created)
      insertLog.run(`log-${pad(i, 6)}`, agentId(i % AUDIT_AGENTS), `user-${i % 50}`, i % 2 ? 'read' : 'write',
        `mcp:github:repo-${i % 13}`, JSON.stringify({ path: `/v1/items/${i}`, q: 'x' }), i % 10 ? 'allowed' : 'denied',
        i % 10 ? null : 'policy', 5 + (i % 40), i % 4 ? 100 + i : null, '10.0.0.1', 'bench/1.0',
        stored(new Date(BASE_TIME + i * 60_000)))
      insertScore.run(agentId(i), 50 + (i % 50), 'medium', JSON.stringify({ age: 0.5, incidents: 0 }), stored(new Date(BASE_TIME)))
    }
  })()
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.exec('ANALYZE')
  db.close()
}

// ---------------------------------------------------------------- Prisma client

export const PRISMA_DIR = path.join(BENCH_DIR, '.prisma-client')

/**
 * Generates the Prisma client for ../schema.prisma with the prisma-client-js generator: for
 * SQLite into bench/.prisma-client/client, for 'postgresql' / 'mysql' into
 * bench/.prisma-client/<provider>/client (the schema is copied there with an `output` added and,
 * for a server, the datasource provider changed). Skipped when the copy is already up to date.
 */
export function ensurePrismaClient(log = console.error, provider = 'sqlite') {
  const source = fs.readFileSync(path.join(ROOT, 'schema.prisma'), 'utf8')
  let patched = source.replace(/generator\s+client\s*\{[^}]*\}/, 'generator client {\n  provider = "prisma-client-js"\n  output   = "./client"\n}')
  if (patched === source) throw new Error('schema.prisma: no `generator client { ... }` block to patch')
  if (provider !== 'sqlite') {
    const withProvider = patched.replace(/(datasource\s+db\s*\{[^}]*?provider\s*=\s*)"[^"]*"/, `$1"${provider}"`)
    if (withProvider === patched) throw new Error('schema.prisma: no `datasource db { provider = ... }` to patch')
    patched = withProvider
  }
  const dir = provider === 'sqlite' ? PRISMA_DIR : path.join(PRISMA_DIR, provider)
  const client = path.join(dir, 'client')
  const schemaCopy = path.join(dir, 'schema.prisma')
  const stamp = path.join(dir, 'schema.sha256')
  const digest = crypto.createHash('sha256').update(patched).digest('hex')
  const upToDate = fs.existsSync(path.join(client, 'index.js')) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === digest
  if (upToDate) return client
  log(`generating the Prisma client (${provider}) into ${path.relative(ROOT, dir)} ...`)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(schemaCopy, patched)
  const env = { ...process.env }
  // Generating needs no schema engine; without its binary the CLI wants to download one.
  if (!env.PRISMA_SCHEMA_ENGINE_BINARY && fs.existsSync('/bin/true')) env.PRISMA_SCHEMA_ENGINE_BINARY = '/bin/true'
  const cli = path.join(ROOT, 'node_modules', 'prisma', 'build', 'index.js')
  execFileSync(process.execPath, [cli, 'generate', '--schema', schemaCopy], { cwd: dir, env, stdio: ['ignore', 'ignore', 'inherit'] })
  fs.writeFileSync(stamp, digest)
  return client
}

// ---------------------------------------------------------------- contenders

const AGENT_COLS = 'id, owner_id, tenant_id, name, type, status, token_hash, token_prefix, expires_at, last_active_at, metadata, created_at, updated_at'
const LOG_COLS = 'id, agent_id, user_id, action, resource, parameters, result, reason, duration_ms, tokens_cost, ip, user_agent, timestamp'

/** The raw driver: better-sqlite3 prepared statements running the SQL Prisma sends (FINDINGS.md e). */
export function rawAdapter(file, synchronous) {
  const db = new Database(file, { timeout: 5000 })
  db.pragma(`synchronous = ${synchronous}`)
  const s = {
    byId: db.prepare(`SELECT ${AGENT_COLS} FROM kavach_agents WHERE id = ? LIMIT 1`),
    byHash: db.prepare(`SELECT ${AGENT_COLS} FROM kavach_agents WHERE token_hash = ? LIMIT 1`),
    byOwner: db.prepare(`SELECT ${AGENT_COLS} FROM kavach_agents WHERE owner_id = ? ORDER BY created_at DESC`),
    logs: db.prepare(`SELECT ${LOG_COLS} FROM kavach_audit_logs WHERE agent_id = ? AND timestamp >= ? ORDER BY timestamp DESC LIMIT ? OFFSET ?`),
    insertLog: db.prepare(`INSERT INTO kavach_audit_logs (${LOG_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING ${LOG_COLS}`),
    upsertScore: db.prepare(`INSERT INTO kavach_trust_scores (agent_id, score, level, factors, computed_at) VALUES (?,?,?,?,?)
      ON CONFLICT (agent_id) DO UPDATE SET score = excluded.score, level = excluded.level, factors = excluded.factors,
      computed_at = excluded.computed_at RETURNING agent_id, score, level, factors, computed_at`),
    insertAgent: db.prepare(`INSERT INTO kavach_agents (${AGENT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING ${AGENT_COLS}`),
    insertPermission: db.prepare(`INSERT INTO kavach_permissions (id, agent_id, resource, actions, constraints, created_at)
      VALUES (?,?,?,?,?,?) RETURNING id, agent_id, resource, actions, constraints, created_at`),
  }
  const json = (v) => (v === undefined ? null : JSON.stringify(v))
  const date = (v) => (v == null ? null : stored(v instanceof Date ? v : new Date(v)))
  const createAgent = (a) => s.insertAgent.get(a.id, a.ownerId, a.tenantId ?? null, a.name, a.type, a.status ?? 'active', a.tokenHash,
    a.tokenPrefix, date(a.expiresAt), date(a.lastActiveAt), json(a.metadata), date(a.createdAt), date(a.updatedAt))
  const createPermission = (p) => s.insertPermission.get(p.id, p.agentId, p.resource, json(p.actions), json(p.constraints), date(p.createdAt))
  const tx = { createAgent, createPermission }
  const runTx = db.transaction((fn) => fn(tx))
  return {
    findAgentById: (id) => s.byId.get(id) ?? null,
    findAgentByTokenHash: (hash) => s.byHash.get(hash) ?? null,
    listAgents: (f) => s.byOwner.all(f.ownerId),
    queryAuditLogs: (f) => s.logs.all(f.agentId, date(f.since), f.limit ?? 100, f.offset ?? 0),
    createAuditLog: (l) => s.insertLog.get(l.id, l.agentId, l.userId, l.action, l.resource, json(l.parameters), l.result, l.reason ?? null,
      Math.trunc(l.durationMs), l.tokensCost ?? null, l.ip ?? null, l.userAgent ?? null, date(l.timestamp)),
    upsertTrustScore: (t) => s.upsertScore.get(t.agentId, t.score, t.level, json(t.factors), date(t.computedAt)),
    createAgent,
    createPermission,
    // Synchronous: better-sqlite3 transactions cannot span an await, so `fn` must be synchronous.
    transaction: (fn) => runTx(fn),
    syncTransaction: true,
    close: () => db.close(),
    synchronousInEffect: () => ['OFF', 'NORMAL', 'FULL', 'EXTRA'][db.pragma('synchronous', { simple: true })],
  }
}

/**
 * What the native contenders are observed by (`--observe`): nothing (the default), a query-event
 * listener, or an OpenTelemetry tracer provider whose spans go to an exporter that drops them.
 */
let observing = 'none'
export const OBSERVE_MODES = ['none', 'query', 'trace']
export function observe(mode) {
  if (!OBSERVE_MODES.includes(mode)) throw new Error(`--observe must be one of ${OBSERVE_MODES.join(', ')}`)
  observing = mode
  if (mode === 'trace') {
    const { context, trace } = require('@opentelemetry/api')
    const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
    const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
    const dropping = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} }
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(dropping)] }))
  }
}

/** A native adapter on `url`, observed as `--observe` asks. */
export function createNative(url) {
  if (observing !== 'query') return native.createAdapter(url)
  const adapter = native.createAdapter(url, { log: [{ emit: 'event', level: 'query' }] })
  let events = 0
  adapter.$on('query', () => void events++)
  return adapter
}

export function nativeAdapter(file) {
  const adapter = createNative(`file:${file}`)
  // The native adapter opens its connections with PRAGMA synchronous = FULL and has no option for
  // it yet, so --synchronous normal does not reach it.
  adapter.synchronousInEffect = () => 'FULL (set by the adapter)'
  return adapter
}

export async function prismaAdapter(file, synchronous, clientDir) {
  const { PrismaClient } = require(clientDir)
  const { PrismaBetterSqlite3 } = require('@prisma/adapter-better-sqlite3')
  const { createPrismaAdapter } = await import('@kavachos/prisma')
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}`, timeout: 5000 }) })
  await prisma.$connect()
  // One better-sqlite3 connection serves every query, so this pragma covers all of them.
  await prisma.$executeRawUnsafe(`PRAGMA synchronous = ${synchronous}`)
  const [row] = await prisma.$queryRawUnsafe('PRAGMA synchronous')
  const adapter = createPrismaAdapter(prisma)
  adapter.prisma = prisma
  adapter.close = () => prisma.$disconnect()
  adapter.synchronousInEffect = () => ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(row.synchronous)]
  return adapter
}

/**
 * kavach-native through a Prisma client: `createAdapter(prisma)` on the very client the
 * prisma contender's @kavachos/prisma runs on (`prismaContender`, which closes it).
 */
export function bridgeAdapter(prismaContender) {
  const adapter = native.createAdapter(prismaContender.prisma)
  adapter.close = async () => {}
  adapter.synchronousInEffect = () => `${prismaContender.synchronousInEffect?.() ?? '–'} (the Prisma client's connection)`
  return adapter
}

// ---------------------------------------------------------------- machine

export function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : ''
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
  let nproc = String(os.availableParallelism?.() ?? os.cpus().length)
  try { nproc = execFileSync('nproc', { encoding: 'utf8' }).trim() } catch {}
  const mem = `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`
  const betterSqlite = new Database(':memory:')
  const sqlite = betterSqlite.prepare('SELECT sqlite_version() AS v').get().v
  betterSqlite.close()
  return {
    nproc, model, mem, node: process.version, kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    sqliteBetter: sqlite, sqliteNative: nativeSqliteVersion(), nativeBuilt: nativeBuildTime(),
    versions: packageVersions(['@kavachos/prisma', 'prisma', '@prisma/client', '@prisma/adapter-better-sqlite3', 'better-sqlite3']),
  }
}

/** The SQLite compiled into the .node file (sqlx's bundled libsqlite3-sys), read from its version string. */
function nativeSqliteVersion() {
  try {
    const file = fs.readdirSync(ROOT).find((f) => f.startsWith('kavach-native.') && f.endsWith('.node'))
    const bytes = fs.readFileSync(path.join(ROOT, file)).toString('latin1')
    const id = /(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) [0-9a-f]{40,}/.exec(bytes)
    const version = /[\x00-\x1f]3\.(\d{1,3})\.(\d{1,3})\x00/.exec(bytes)
    if (version) return `3.${version[1]}.${version[2]}${id ? ` (${id[1]})` : ''}`
  } catch {}
  return 'unknown'
}

function nativeBuildTime() {
  try {
    const file = fs.readdirSync(ROOT).find((f) => f.startsWith('kavach-native.') && f.endsWith('.node'))
    return `${file} built ${fs.statSync(path.join(ROOT, file)).mtime.toISOString()}`
  } catch { return 'no native build found' }
}

export function packageVersion(name) {
  try { return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version } catch { return 'missing' }
}

function packageVersions(names) {
  return Object.fromEntries(names.map((name) => [name, packageVersion(name)]))
}

/** Warns when a Rust source is newer than the built .node file (the bench measures the build). */
export function staleBuildWarning() {
  try {
    const file = fs.readdirSync(ROOT).find((f) => f.startsWith('kavach-native.') && f.endsWith('.node'))
    const built = fs.statSync(path.join(ROOT, file)).mtimeMs
    const files = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true }).map((f) => path.join(ROOT, 'src', f))
    const newest = Math.max(...files.map((f) => fs.statSync(f).mtimeMs))
    if (newest > built) return `warning: src/ has changes newer than ${file}; run \`npm run build\` first to measure them`
  } catch {}
  return null
}

// ---------------------------------------------------------------- JS-thread CPU

const SCHEDSTAT = '/proc/thread-self/schedstat'
export const threadCpuSource = fs.existsSync(SCHEDSTAT) ? SCHEDSTAT : 'process.cpuUsage() (whole process: no per-thread counter here)'

/** Nanoseconds the calling thread has spent on a CPU (first field of schedstat). */
export function threadCpuNs() {
  if (threadCpuSource === SCHEDSTAT) return Number(fs.readFileSync(SCHEDSTAT, 'latin1').split(' ', 1)[0])
  const u = process.cpuUsage()
  return (u.user + u.system) * 1000
}

export function processCpuNs() {
  const u = process.cpuUsage()
  return (u.user + u.system) * 1000
}
