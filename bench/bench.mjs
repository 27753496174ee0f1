// Benchmark: kavach-native vs @kavachos/prisma on Prisma 7 vs the raw driver, in one process.
// SQLite by default (one file; @prisma/adapter-better-sqlite3, raw better-sqlite3); with --pg URL
// on a fresh PostgreSQL schema (@prisma/adapter-pg, raw pg Pool), with --mysql URL on a fresh
// MySQL/MariaDB database (@prisma/adapter-mariadb, raw mariadb pool): see servers.mjs.
// `npm run bench -- --help` for options.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import * as L from './lib.mjs'
import * as S from './servers.mjs'

// --scale: tables of production size, each call compared with its figure at the default 10k rows.
const SCALE_ROWS = 1_000_000
const BASE_ROWS = 10_000

const SPEC = {
  quick: { type: 'flag', help: 'smoke run of about 30 s (short phases; does not rewrite RESULTS.md unless --results is given)' },
  reps: { type: 'number', default: 5, help: 'repetitions of every (operation, contender) pair' },
  synchronous: { type: 'string', default: 'full', help: 'SQLite: PRAGMA synchronous for Prisma and the raw driver: full | normal' },
  rows: { type: 'number', default: BASE_ROWS, help: 'rows seeded in agents, audit logs and trust scores' },
  inflight: { type: 'number', default: 64, help: 'calls kept in flight during the load phase' },
  seqMs: { type: 'number', default: 600, help: 'duration of each sequential phase, ms' },
  loadMs: { type: 'number', default: 900, help: 'duration of each load phase, ms' },
  warmupMs: { type: 'number', default: 150, help: 'warm-up before each phase pair, ms' },
  ops: { type: 'string', default: '', help: 'comma-separated subset of operations (default: all)' },
  contenders: { type: 'string', help: 'comma-separated subset of native, prisma, bridge (kavach-native on the prisma contender\'s client), raw, peer (servers: postgres.js / mysql2); default all' },
  db: { type: 'string', default: path.join(L.BENCH_DIR, '.data', 'bench.db'), help: 'SQLite file (recreated and seeded at start)' },
  results: { type: 'string', default: undefined, help: 'where to write the Markdown results (default bench/RESULTS.md; none with --quick)' },
  pg: { type: 'string', default: undefined, help: 'run on PostgreSQL instead: base URL; a fresh schema is created in its database and dropped at the end' },
  mysql: { type: 'string', default: undefined, help: 'run on MySQL/MariaDB instead: base URL; a fresh database is created on the server and dropped at the end' },
  pool: { type: 'number', default: 4, help: 'servers: connections in the pool of every contender' },
  scale: { type: 'flag', help: `production-size tables: --rows ${SCALE_ROWS} (agents, audit logs, trust scores); compared with the last full run at 10k rows` },
  observe: { type: 'string', default: 'none', help: 'what observes the native contenders: none | query (a query-event listener) | trace (an OpenTelemetry tracer provider, spans dropped)' },
  help: { type: 'flag', help: 'show this help' },
}

let args
try { args = L.parseArgs(process.argv.slice(2), SPEC) } catch (e) { console.error(e.message); process.exit(2) }
if (args.help) { console.log(L.usage(SPEC, 'npm run bench -- [options]')); process.exit(0) }
if (args.pg !== undefined && args.mysql !== undefined) { console.error('give one of --pg and --mysql per run'); process.exit(2) }
const PROVIDER = args.pg !== undefined ? 'postgresql' : args.mysql !== undefined ? 'mysql' : 'sqlite'
const SERVER = PROVIDER !== 'sqlite'
if (SERVER && !(args.pool >= 1)) { console.error('--pool must be >= 1'); process.exit(2) }
if (args.quick) {
  args.seqMs = Math.min(args.seqMs, 100)
  args.loadMs = Math.min(args.loadMs, 150)
  args.warmupMs = Math.min(args.warmupMs, 40)
  args.rows = Math.min(args.rows, 10000)
}
if (args.scale) args.rows = SCALE_ROWS
const SYNC = String(args.synchronous).toUpperCase()
if (!['FULL', 'NORMAL'].includes(SYNC)) { console.error('--synchronous must be full or normal'); process.exit(2) }
if (!(args.reps >= 1)) { console.error('--reps must be >= 1'); process.exit(2) }
try { L.observe(args.observe) } catch (e) { console.error(e.message); process.exit(2) }
const resultsFile = args.results ?? (args.quick ? null : path.join(L.BENCH_DIR, 'RESULTS.md'))
const log = (...a) => console.error(...a)

// ---------------------------------------------------------------- workload

const shape = L.dataShape(args.rows)
const spread = (i, n) => (i * 7919) % n // walks 0..n-1 in a scattered order
let uid = 0
const now = () => new Date()

const agentInput = (id) => ({
  id, ownerId: 'bench-owner', name: `bench ${id}`, type: 'autonomous', tokenHash: `bench-hash-${id}`, tokenPrefix: 'kv_',
  metadata: { team: 'bench', n: 1 }, createdAt: now(), updatedAt: now(),
})
const permissionInput = (agentId, n) => ({
  id: `${agentId}-perm-${n}`, agentId, resource: `mcp:github:${n}`, actions: ['read', 'write'],
  constraints: { maxCallsPerHour: 100 }, createdAt: now(),
})

/** Each operation: how to call it on an adapter, and what a correct answer looks like. */
const OPS = {
  findAgentById: {
    call: (a, i) => a.findAgentById(L.agentId(spread(i, shape.rows))),
    check: (r, i) => r?.id === L.agentId(spread(i, shape.rows)),
  },
  findAgentByTokenHash: {
    call: (a, i) => a.findAgentByTokenHash(L.tokenHash(spread(i, shape.rows))),
    check: (r, i) => r?.id === L.agentId(spread(i, shape.rows)),
  },
  listAgents: {
    call: (a, i) => a.listAgents({ ownerId: L.ownerId(spread(i, shape.owners)) }),
    check: (r) => Array.isArray(r) && r.length === L.AGENTS_PER_OWNER,
  },
  queryAuditLogs: {
    call: (a, i) => a.queryAuditLogs({ agentId: L.agentId(spread(i, L.AUDIT_AGENTS)), since: shape.since, limit: L.AUDIT_LIMIT }),
    check: (r) => Array.isArray(r) && r.length === L.AUDIT_LIMIT,
  },
  createAuditLog: {
    call: (a) => a.createAuditLog({
      id: `bench-log-${++uid}`, agentId: 'bench-writer', userId: 'bench-user', action: 'read', resource: 'mcp:github:repo',
      parameters: { path: '/v1/items', q: 'x' }, result: 'allowed', durationMs: 12, tokensCost: 3, ip: '10.0.0.1',
      userAgent: 'bench/1.0', timestamp: now(),
    }),
    check: (r) => typeof r?.id === 'string' && r.id.startsWith('bench-log-'),
  },
  upsertTrustScore: {
    call: (a, i) => a.upsertTrustScore({
      agentId: L.agentId(spread(i, shape.rows)), score: i % 100, level: 'medium', factors: { age: 0.5, incidents: i % 3 }, computedAt: now(),
    }),
    check: (r, i) => (r?.agentId ?? r?.agent_id) === L.agentId(spread(i, shape.rows)),
  },
  transaction: {
    // createAgent + 2 createPermission in one transaction. Raw better-sqlite3's transactions are
    // synchronous (it cannot hold one across an await); all the others are interactive.
    call: (a, i, kind) => {
      const id = `bench-agent-${++uid}`
      if (kind === 'raw' && a.syncTransaction) {
        return a.transaction((tx) => {
          const agent = tx.createAgent(agentInput(id))
          tx.createPermission(permissionInput(id, 1))
          tx.createPermission(permissionInput(id, 2))
          return agent
        })
      }
      return a.transaction(async (tx) => {
        const agent = await tx.createAgent(agentInput(id))
        await tx.createPermission(permissionInput(id, 1))
        await tx.createPermission(permissionInput(id, 2))
        return agent
      })
    },
    check: (r) => typeof r?.id === 'string' && r.id.startsWith('bench-agent-'),
  },
}
const WRITES = new Set(['createAuditLog', 'upsertTrustScore', 'transaction'])

const opNames = args.ops ? args.ops.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(OPS)
for (const op of opNames) if (!OPS[op]) { console.error(`unknown operation '${op}'; known: ${Object.keys(OPS).join(', ')}`); process.exit(2) }
const CONTENDER_LABEL = {
  native: 'native', prisma: 'prisma7', bridge: 'bridge',
  raw: { sqlite: 'raw', postgresql: 'raw pg', mysql: 'raw mariadb' }[PROVIDER],
  // A second plain driver on the servers: the fastest known one besides the raw driver.
  ...(PROVIDER === 'sqlite' ? {} : { peer: { postgresql: 'postgres.js', mysql: 'mysql2' }[PROVIDER] }),
}
const contenderNames = (args.contenders ?? Object.keys(CONTENDER_LABEL).join(',')).split(',').map((s) => s.trim()).filter(Boolean)
for (const c of contenderNames) if (!CONTENDER_LABEL[c]) { console.error(`unknown contender '${c}'; known: ${Object.keys(CONTENDER_LABEL).join(', ')}`); process.exit(2) }
// The bridge runs on the prisma contender's client: open that one too (it is measured only if asked for).
const openNames = contenderNames.includes('bridge') && !contenderNames.includes('prisma') ? ['prisma', ...contenderNames] : contenderNames

// ---------------------------------------------------------------- measuring

const clock = () => performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function warmup(fn, ms) {
  const end = clock() + ms
  let i = 0
  while (clock() < end) { try { await fn(i++) } catch {} }
}

/** Calls awaited one after another for `ms`: µs per call. */
async function sequential(fn, ms) {
  let n = 0, errors = 0, firstError
  const t0 = clock(), end = t0 + ms
  while (clock() < end) {
    try { await fn(n) } catch (e) { errors++; firstError ??= e }
    n++
  }
  const elapsed = clock() - t0
  return { seqUs: (elapsed * 1000) / n, seqCalls: n, errors, firstError }
}

/**
 * `inflight` workers, each starting its next call when the previous one settles, until `ms` has
 * passed; then the calls still running are drained. Measures throughput, CPU time of this (the JS)
 * thread and of the whole process per call, and the event-loop delay while it runs.
 */
async function underLoad(fn, ms, inflight) {
  let n = 0, done = 0, errors = 0, firstError
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  await sleep(2) // let the delay timer start before the load
  const server0 = serverCpuNs ? await serverCpuNs() : NaN
  const cpu0 = L.threadCpuNs(), proc0 = L.processCpuNs(), t0 = clock()
  const end = t0 + ms
  const worker = async () => {
    while (clock() < end) {
      try { await fn(n++) } catch (e) { errors++; firstError ??= e }
      done++
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker))
  const elapsed = clock() - t0
  const cpu1 = L.threadCpuNs(), proc1 = L.processCpuNs()
  const server1 = serverCpuNs ? await serverCpuNs() : NaN
  // A driver that never yields keeps the delay timer from firing until now: give it one turn so
  // the block it just sat through is recorded.
  await sleep(2)
  histogram.disable()
  return {
    opsPerSec: (done * 1000) / elapsed, loadCalls: done, errors, firstError,
    jsCpuUs: (cpu1 - cpu0) / 1000 / done, procCpuUs: (proc1 - proc0) / 1000 / done, serverCpuUs: (server1 - server0) / 1000 / done,
    lagMaxMs: histogram.max / 1e6, lagP99Ms: histogram.percentile(99) / 1e6,
  }
}

// ---------------------------------------------------------------- run

const t00 = clock()
const loadBefore = os.loadavg()[0]
const m = L.machine() // before the run: the .node file it describes is the one this process loads
const stale = L.staleBuildWarning()
if (stale) log(stale)
const clientDir = L.ensurePrismaClient(log, PROVIDER)
const adapters = {}
let admin = null // SQLite: the connection that cleans up between phases
let server = null // PostgreSQL / MySQL: what servers.mjs set up
let cleanup // removes what the write operations added, so every phase starts from the seeded row counts
if (SERVER) {
  const setup = PROVIDER === 'postgresql' ? S.postgres : S.mysql
  try {
    server = await setup(args.pg ?? args.mysql, { rows: args.rows, pool: args.pool, log, clientDir })
  } catch (e) { console.error(`cannot set up ${PROVIDER}: ${e.message}`); process.exit(1) }
  // Whatever happens from here on, the schema / database goes away.
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => exitWith(130))
  process.once('uncaughtException', (e) => { console.error(e); exitWith(1) })
  try {
    for (const c of openNames) adapters[c] = c === 'bridge' ? L.bridgeAdapter(adapters.prisma) : await server.make[c]()
  } catch (e) { console.error(`cannot open the contenders: ${e.stack ?? e}`); await exitWith(1) }
  cleanup = server.cleanup
} else {
  log(`seeding ${args.db}: ${args.rows} agents, audit logs and trust scores ...`)
  L.seed(args.db, args.rows)
  admin = new L.Database(args.db, { timeout: 10000 })
  for (const c of openNames) {
    if (c === 'native') adapters[c] = L.nativeAdapter(args.db)
    if (c === 'prisma') adapters[c] = await L.prismaAdapter(args.db, SYNC, clientDir)
    if (c === 'bridge') adapters[c] = L.bridgeAdapter(adapters.prisma)
    if (c === 'raw') adapters[c] = L.rawAdapter(args.db, SYNC)
  }
  cleanup = async () => {
    admin.exec(`DELETE FROM kavach_audit_logs WHERE id LIKE 'bench-log-%';
      DELETE FROM kavach_permissions WHERE agent_id LIKE 'bench-agent-%';
      DELETE FROM kavach_agents WHERE id LIKE 'bench-agent-%';`)
    admin.pragma('wal_checkpoint(TRUNCATE)')
  }
}
const serverCpuNs = server?.serverCpuNs ?? null

/** Closes what is open and, on a server, drops this run's schema / database; then exits. */
async function exitWith(code) {
  for (const a of Object.values(adapters)) await Promise.resolve(a.close?.()).catch(() => {})
  if (server) await server.teardown().catch((e) => console.error(`could not drop the bench schema/database: ${e.message}`))
  process.exit(code)
}

// Correctness first: every contender must give the expected answer for every operation.
for (const op of opNames) {
  for (const c of contenderNames) {
    for (const i of [0, 1, 12345]) {
      const result = await OPS[op].call(adapters[c], i, c)
      if (!OPS[op].check(result, i)) {
        console.error(`sanity check failed: ${c} ${op}(#${i}) returned`, result)
        await exitWith(1)
      }
    }
  }
}
await cleanup()

const samples = {} // samples[op][contender] = [{ seqUs, opsPerSec, ... }, ...]
const phaseCount = opNames.length * contenderNames.length * args.reps
let phase = 0
for (let rep = 0; rep < args.reps; rep++) {
  for (const op of opNames) {
    // Rotate the order each repetition so no contender always runs first or last.
    const order = contenderNames.map((_, k) => contenderNames[(k + rep) % contenderNames.length])
    for (const c of order) {
      const a = adapters[c]
      const fn = (i) => OPS[op].call(a, i, c)
      await warmup(fn, args.warmupMs)
      if (WRITES.has(op)) await cleanup()
      const seq = await sequential(fn, args.seqMs)
      if (WRITES.has(op)) await cleanup()
      const load = await underLoad(fn, args.loadMs, args.inflight)
      if (WRITES.has(op)) await cleanup()
      const s = { ...seq, ...load, errors: seq.errors + load.errors, firstError: seq.firstError ?? load.firstError }
      ;((samples[op] ??= {})[c] ??= []).push(s)
      phase++
      log(`[${phase}/${phaseCount}] rep ${rep + 1} ${op.padEnd(20)} ${CONTENDER_LABEL[c].padEnd(11)} seq ${fmt(s.seqUs)} µs/op, ` +
        `${fmt(s.opsPerSec, 0)} ops/s @${args.inflight}, JS CPU ${fmt(s.jsCpuUs)} µs/op, lag max ${fmt(s.lagMaxMs)} ms` +
        (s.errors ? `, ${s.errors} errors (${String(s.firstError?.message ?? s.firstError).trim().split('\n').pop()})` : ''))
    }
  }
}

const synchronousInEffect = SERVER ? {} : Object.fromEntries(contenderNames.map((c) => [c, adapters[c].synchronousInEffect()]))
for (const c of Object.keys(adapters)) await adapters[c].close()
admin?.close()
if (server) {
  await server.teardown()
  log(`dropped ${server.where.split(' ').slice(0, 2).join(' ')}`)
}
const totalSec = (clock() - t00) / 1000
const loadAfter = os.loadavg()[0]

// ---------------------------------------------------------------- report

function fmt(v, digits) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–'
  if (digits === undefined) digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const stat = (op, c, key) => {
  const xs = (samples[op]?.[c] ?? []).map((s) => s[key])
  return xs.length ? { min: Math.min(...xs), med: median(xs), max: Math.max(...xs) } : null
}
const med = (op, c, key) => stat(op, c, key)?.med
const range = (st, digits) => (st ? `${fmt(st.med, digits)} (${fmt(st.min, digits)}–${fmt(st.max, digits)})` : '–')
const ratio = (x) => (x === undefined || !Number.isFinite(x) ? '–' : `${fmt(x, x >= 10 ? 1 : 2)}×`)

function table(head, rows, markdown) {
  if (markdown) {
    return [`| ${head.join(' | ')} |`, `|${head.map((_, k) => (k < 2 ? ':---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
  }
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => String(r[k]).length)))
  const line = (r) => r.map((cell, k) => (k < 2 ? String(cell).padEnd(widths[k]) : String(cell).padStart(widths[k]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

const resultHead = ['operation', 'contender', 'sequential µs/op', `ops/s @${args.inflight} in flight`, 'JS-thread CPU µs/op', 'process CPU µs/op',
  ...(SERVER ? ['server CPU µs/op'] : []), 'loop lag p99 ms', 'loop lag max ms', 'errors']
const resultRows = []
for (const op of opNames) {
  for (const c of contenderNames) {
    const errors = (samples[op]?.[c] ?? []).reduce((sum, s) => sum + s.errors, 0)
    resultRows.push([op, CONTENDER_LABEL[c], range(stat(op, c, 'seqUs')), range(stat(op, c, 'opsPerSec'), 0), range(stat(op, c, 'jsCpuUs')),
      fmt(med(op, c, 'procCpuUs')), ...(SERVER ? [fmt(med(op, c, 'serverCpuUs'))] : []), fmt(med(op, c, 'lagP99Ms')),
      range(stat(op, c, 'lagMaxMs')), String(errors)])
  }
}

const has = (c) => contenderNames.includes(c)
const ratioHead = ['operation', 'vs', 'sequential speed', 'ops/s @' + args.inflight, 'JS-thread CPU']
const ratioRows = []
for (const op of opNames) {
  for (const [mine, other] of [['native', 'prisma'], ['native', 'raw'], ['native', 'peer'], ['bridge', 'prisma']]) {
    if (!has(mine) || !has(other)) continue
    ratioRows.push([op, `${CONTENDER_LABEL[mine]} vs ${CONTENDER_LABEL[other]}`,
      ratio(med(op, other, 'seqUs') / med(op, mine, 'seqUs')),
      ratio(med(op, mine, 'opsPerSec') / med(op, other, 'opsPerSec')),
      ratio(med(op, other, 'jsCpuUs') / med(op, mine, 'jsCpuUs'))])
  }
}

// Targets of issue 5, checked on the medians.
const targetRows = []
const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL')
function target(name, measured, ok) { targetRows.push([name, measured, verdict(ok)]) }
const both = (a, b) => (a === undefined || b === undefined ? undefined : a && b)
// Keyed point reads. findAgentByTokenHash is not one here: kavach_agents has no index on
// token_hash (as upstream), so it scans the table; it is compared in the ratio table only.
const POINT_READS = ['findAgentById'].filter((o) => opNames.includes(o))
if (PROVIDER === 'sqlite' && has('native') && has('prisma')) {
  if (opNames.includes('findAgentById')) {
    const us = med('findAgentById', 'native', 'seqUs'), x = med('findAgentById', 'prisma', 'seqUs') / us
    target('findAgentById sequential ≤ 40 µs and ≥ 2.5× faster than Prisma 7', `${fmt(us)} µs, ${ratio(x)}`, both(us <= 40, x >= 2.5))
  }
  for (const op of POINT_READS) {
    const ops = med(op, 'native', 'opsPerSec'), x = ops / med(op, 'prisma', 'opsPerSec')
    target(`point read ${op} @${args.inflight} ≥ 75k ops/s and ≥ 3× Prisma 7`, `${fmt(ops, 0)} ops/s, ${ratio(x)}`, both(ops >= 75000, x >= 3))
  }
}
if (PROVIDER === 'postgresql' && has('native') && has('raw')) {
  if (opNames.includes('findAgentById')) {
    const us = med('findAgentById', 'native', 'seqUs'), rawUs = med('findAgentById', 'raw', 'seqUs')
    target('PostgreSQL findAgentById sequential ≤ raw pg', `${fmt(us)} µs vs ${fmt(rawUs)} µs`, us <= rawUs)
  }
  for (const op of POINT_READS) {
    const ops = med(op, 'native', 'opsPerSec'), x = ops / med(op, 'raw', 'opsPerSec')
    target(`PostgreSQL point read ${op} @${args.inflight} ≥ 45k ops/s and ≥ 1.5× raw pg Pool`, `${fmt(ops, 0)} ops/s, ${ratio(x)}`,
      both(ops >= 45000, x >= 1.5))
  }
}
if (has('native') && has('prisma')) {
  // The budget (≤ 5 µs, Prisma ~37) is per point read; for calls that return 20–50
  // rows or run 5 statements only the ratio to Prisma 7 applies (raw better-sqlite3 itself
  // spends ~180 µs of JS thread on 50 audit-log rows).
  for (const op of opNames) {
    const us = med(op, 'native', 'jsCpuUs'), x = med(op, 'prisma', 'jsCpuUs') / us
    if (POINT_READS.includes(op)) {
      target(`${op}: JS-thread CPU under load ≤ 5 µs/call and ≤ 1/7 of Prisma 7`, `${fmt(us)} µs, 1/${fmt(x, 1)}`, both(us <= 5, x >= 7))
    } else {
      target(`${op}: JS-thread CPU under load ≤ 1/7 of Prisma 7`, `${fmt(us)} µs, 1/${fmt(x, 1)}`, x >= 7)
    }
  }
  for (const op of ['createAuditLog', 'transaction'].filter((o) => opNames.includes(o))) {
    const x = med(op, 'native', 'opsPerSec') / med(op, 'prisma', 'opsPerSec')
    target(`${op} @${args.inflight} ≥ 3× Prisma 7 (ops/s)`, ratio(x), x >= 3)
  }
}

// Issue 15: against the fastest plain driver of each database.
if (PROVIDER === 'postgresql' && has('native') && has('peer')) {
  if (opNames.includes('findAgentById')) {
    const us = med('findAgentById', 'native', 'seqUs'), peerUs = med('findAgentById', 'peer', 'seqUs')
    target('PostgreSQL findAgentById sequential ≤ postgres.js', `${fmt(us)} µs vs ${fmt(peerUs)} µs`, us <= peerUs)
  }
  for (const op of POINT_READS) {
    const x = med(op, 'native', 'opsPerSec') / med(op, 'peer', 'opsPerSec')
    target(`PostgreSQL point read ${op} @${args.inflight} ≥ 1.5× postgres.js`, ratio(x), x >= 1.5)
  }
  for (const op of ['createAuditLog', 'upsertTrustScore'].filter((o) => opNames.includes(o))) {
    const x = med(op, 'native', 'opsPerSec') / med(op, 'peer', 'opsPerSec')
    target(`PostgreSQL ${op} @${args.inflight} ≥ 1.2× postgres.js`, ratio(x), x >= 1.2)
  }
}
if (PROVIDER === 'mysql' && has('native') && (has('raw') || has('peer'))) {
  for (const op of [...POINT_READS, 'createAuditLog', 'upsertTrustScore'].filter((o) => opNames.includes(o))) {
    const rivals = ['raw', 'peer'].filter(has)
    const best = rivals.reduce((a, b) => (med(op, a, 'opsPerSec') >= med(op, b, 'opsPerSec') ? a : b))
    const x = med(op, 'native', 'opsPerSec') / med(op, best, 'opsPerSec')
    target(`MariaDB ${op} @${args.inflight} ≥ 1.2× the faster of ${rivals.map((r) => CONTENDER_LABEL[r]).join(' and ')}`, `${ratio(x)} (vs ${CONTENDER_LABEL[best]})`, x >= 1.2)
  }
}
if (PROVIDER === 'sqlite' && has('native')) {
  if (has('prisma') && opNames.includes('transaction')) {
    const seq = med('transaction', 'prisma', 'seqUs') / med('transaction', 'native', 'seqUs')
    const load = med('transaction', 'native', 'opsPerSec') / med('transaction', 'prisma', 'opsPerSec')
    target('SQLite transaction ≥ 4× Prisma 7 (sequential, @' + args.inflight + ')', `${ratio(seq)}, ${ratio(load)}`, both(seq >= 4, load >= 4))
  }
  if (has('raw')) {
    for (const op of POINT_READS) {
      const x = med(op, 'native', 'opsPerSec') / med(op, 'raw', 'opsPerSec')
      target(`SQLite point read ${op} @${args.inflight} ≥ 1× raw better-sqlite3`, ratio(x), x >= 1)
    }
  }
}

// Issue 12: through the same client, the bridge is not slower than @kavachos/prisma on it.
if (has('bridge') && has('prisma')) {
  for (const op of opNames) {
    const seq = med(op, 'prisma', 'seqUs') / med(op, 'bridge', 'seqUs')
    const load = med(op, 'bridge', 'opsPerSec') / med(op, 'prisma', 'opsPerSec')
    target(`${op}: bridge ≥ Prisma 7 on the same client (sequential, @${args.inflight})`, `${ratio(seq)}, ${ratio(load)}`, both(seq >= 1, load >= 1))
  }
}

// Every full run at the default size keeps its medians; a --scale run compares with them (issue 15).
const mediansFile = path.join(L.BENCH_DIR, '.data', `medians-${PROVIDER}.json`)
const medians = Object.fromEntries(opNames.map((op) => [op, Object.fromEntries(contenderNames.map((c) => [c, { seqUs: med(op, c, 'seqUs'), opsPerSec: med(op, c, 'opsPerSec') }]))]))
if (!args.scale && !args.quick && args.rows === BASE_ROWS) {
  fs.mkdirSync(path.dirname(mediansFile), { recursive: true })
  fs.writeFileSync(mediansFile, JSON.stringify({ at: new Date().toISOString(), rows: BASE_ROWS, medians }, null, 1))
}
if (args.scale && has('native')) {
  const base = fs.existsSync(mediansFile) ? JSON.parse(fs.readFileSync(mediansFile, 'utf8')) : null
  if (!base) log(`no ${path.relative(process.cwd(), mediansFile)} yet: run \`npm run bench\` (same provider) at ${BASE_ROWS} rows first to compare`)
  for (const op of opNames) {
    const then = base?.medians?.[op]?.native
    const seq = then && medians[op].native.seqUs / then.seqUs
    const load = then && then.opsPerSec / medians[op].native.opsPerSec
    target(`${op} at ${args.rows.toLocaleString('en-US')} rows within 2× of ${BASE_ROWS.toLocaleString('en-US')} rows (sequential, @${args.inflight}; slowdown)`,
      then ? `${ratio(seq)}, ${ratio(load)}` : 'no 10k-row run', then ? both(seq <= 2, load <= 2) : undefined)
  }
}

const rebuilt = L.machine().nativeBuilt !== m.nativeBuilt
if (rebuilt) log('warning: the native addon was rebuilt during the run; the numbers are for the build loaded at the start')
const syncLine = Object.entries(synchronousInEffect).map(([c, v]) => `${CONTENDER_LABEL[c]} ${v}`).join(', ')
const settings = `${args.reps} repetitions; phases: warm-up ${args.warmupMs} ms, sequential ${args.seqMs} ms, load ${args.loadMs} ms ` +
  `with ${args.inflight} calls in flight${args.quick ? ' (--quick)' : ''}; total run ${fmt(totalSec, 0)} s`
const seeded = `${args.rows} agents, ${args.rows} audit logs and ${args.rows} trust scores`
const commonNotes = [
  'Cells are median (min–max) over the repetitions. Sequential = each call awaited before the next. Load = ' +
    `${args.inflight} workers that each start a new call as soon as their previous one settles.`,
  `JS-thread CPU = on-CPU time of the main thread (${L.threadCpuSource}, first field) during the load phase, divided by the calls. ` +
    `Process CPU = process.cpuUsage() (all threads of the node process${SERVER ? ', the native adapter\'s tokio threads included' : ', SQLite work included'}) per call.`,
  ...(SERVER ? [server.serverCpuNote] : []),
  'Loop lag = perf_hooks.monitorEventLoopDelay (1 ms resolution) during the load phase.' +
    (SERVER ? '' : ' A synchronous driver never yields inside the load loop, so its lag is the whole phase.'),
  `Ratios: > 1× means native (or the bridge) is better (faster, more ops/s, less JS-thread CPU).`,
  'Bridge = kavach-native through the Prisma client (`createAdapter(prisma)`) that the prisma7 contender\'s @kavachos/prisma runs on: the same client, connections and driver adapter; every statement goes through `$queryRawUnsafe` / `$executeRawUnsafe`.',
  `listAgents({ ownerId }) returns ${L.AGENTS_PER_OWNER} rows; queryAuditLogs({ agentId, since, limit: ${L.AUDIT_LIMIT} }) returns ${L.AUDIT_LIMIT} rows. ` +
    'kavach_agents has no index on owner_id or token_hash (schema.prisma, as upstream), so listAgents and findAgentByTokenHash scan the table.',
]
const notes = SERVER
  ? [
      `One node process; ${server.where}, created for the run, seeded with ${seeded} (DDL from \`${server.ddl}\`, then ANALYZE) ` +
        'and dropped at the end. The three contenders hold their pools at the same time and run one after another.',
      `${server.poolLine[0].toUpperCase()}${server.poolLine.slice(1)}; with ${args.inflight} calls in flight every contender queues for its ${args.pool} connections.`,
      `The server runs on the same ${m.nproc} CPUs as the benchmark, so client CPU per call and server CPU per call compete.`,
      ...commonNotes,
      server.rawLine,
      'Writes (createAuditLog, upsertTrustScore, transaction) use their own ids; the rows they add are deleted between phases.',
    ]
  : [
      `One node process, one SQLite file in WAL mode seeded with ${seeded} ` +
        '(DDL from `schemaDdl(\'sqlite\')`). The three contenders hold their connections to that file at the same time and run one after another.',
      `PRAGMA synchronous in effect: ${syncLine}.`,
      ...commonNotes,
      'Raw = better-sqlite3 prepared statements with the same SQL, rows returned as stored (no Date / JSON decoding); its transaction is synchronous.',
      'Writes (createAuditLog, upsertTrustScore, transaction) use their own ids; the rows they add are deleted and the WAL checkpointed between phases.',
    ]

const adapterVersions = SERVER
  ? server.versionsLine.map((name) => `${name} ${L.packageVersion(name)}`).join(', ')
  : `@prisma/adapter-better-sqlite3 ${m.versions['@prisma/adapter-better-sqlite3']}`
const machineLines = [
  `CPU: ${m.model}, nproc ${m.nproc}, ${m.mem} RAM; ${m.kernel}`,
  SERVER ? `Node ${m.node}; ${server.machineLine}`
    : `Node ${m.node}; SQLite ${m.sqliteBetter} (better-sqlite3 ${m.versions['better-sqlite3']}: raw and Prisma), ${m.sqliteNative} (bundled in the native addon)`,
  `${m.nativeBuilt}${rebuilt ? ' (rebuilt on disk during the run; this process kept the one loaded at the start)' : ''}`,
  `1-minute load average: ${fmt(loadBefore)} at the start, ${fmt(loadAfter)} at the end` +
    (Math.max(loadBefore, loadAfter) > 0.5 ? ` (other work was running on this machine: expect noise; compare min–max)` : ''),
  `@kavachos/prisma ${m.versions['@kavachos/prisma']}, prisma ${m.versions.prisma}, @prisma/client ${m.versions['@prisma/client']}, ${adapterVersions}`,
]

console.log('\n' + machineLines.join('\n'))
console.log(settings)
if (!SERVER) console.log(`PRAGMA synchronous: ${syncLine}`)
console.log('')
console.log(table(resultHead, resultRows, false) + '\n')
if (ratioRows.length) console.log(table(ratioHead, ratioRows, false) + '\n')
if (targetRows.length) console.log(table(['target', 'measured (median)', 'verdict'], targetRows, false) + '\n')
for (const op of opNames) for (const c of contenderNames) {
  const bad = (samples[op]?.[c] ?? []).find((s) => s.firstError)
  if (bad) console.log(`first error of ${CONTENDER_LABEL[c]} ${op}: ${String(bad.firstError?.message ?? bad.firstError).trim()}`)
}

// RESULTS.md holds one section per provider between markers; a run rewrites its own section and
// keeps the others, and whatever follows END_MARK (notes written by hand) stays as it is.
const SECTIONS = [['sqlite', 'SQLite'], ['postgresql', 'PostgreSQL'], ['mysql', 'MySQL / MariaDB'],
  ['sqlite-scale', `SQLite at ${SCALE_ROWS.toLocaleString('en-US')} rows`], ['postgresql-scale', `PostgreSQL at ${SCALE_ROWS.toLocaleString('en-US')} rows`],
  ['mysql-scale', `MySQL / MariaDB at ${SCALE_ROWS.toLocaleString('en-US')} rows`]]
const SECTION = args.scale ? `${PROVIDER}-scale` : PROVIDER
const END_MARK = '<!-- end of generated sections: text below is kept by every run -->'
const begin = (p) => `<!-- section ${p} -->`
const end = (p) => `<!-- /section ${p} -->`

if (resultsFile) {
  const title = SECTIONS.find(([p]) => p === SECTION)[1]
  const section = [
    begin(SECTION),
    `## ${title}`,
    '',
    `Latest run: ${new Date().toISOString()}, \`npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\`.`,
    '',
    '### Machine',
    '',
    ...machineLines.map((l) => `- ${l}`),
    '',
    '### Method',
    '',
    `- ${settings}.`,
    ...notes.map((n) => `- ${n}`),
    '',
    '### Results',
    '',
    table(resultHead, resultRows, true),
    '',
    '### Ratios',
    '',
    table(ratioHead, ratioRows, true),
    '',
    '### Targets (issues 5, 12, 15)',
    '',
    table(['target', 'measured (median)', 'verdict'], targetRows, true),
    end(SECTION),
  ].join('\n')
  const old = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, 'utf8') : ''
  const kept = {}
  for (const [p] of SECTIONS) {
    const a = old.indexOf(begin(p)), b = old.indexOf(end(p))
    if (a >= 0 && b > a) kept[p] = old.slice(a, b + end(p).length)
  }
  kept[SECTION] = section
  const tailAt = old.indexOf(END_MARK)
  const tail = tailAt >= 0 ? old.slice(tailAt + END_MARK.length).replace(/^\n+/, '') : ''
  const md = [
    '# Benchmark results',
    '',
    'kavach-native vs `@kavachos/prisma` on Prisma 7 vs the raw driver, one section per provider. Each run rewrites the section ' +
      'of its provider and keeps the others: `npm run bench` (SQLite), `npm run bench -- --pg <url>`, `npm run bench -- --mysql <url>`.',
    '',
    ...SECTIONS.filter(([p]) => kept[p]).flatMap(([p]) => [kept[p], '']),
    END_MARK,
    '',
    tail,
  ].join('\n').replace(/\n+$/, '\n')
  fs.writeFileSync(resultsFile, md)
  log(`wrote ${path.relative(process.cwd(), resultsFile) || resultsFile} (section ${title})`)
}
