// Soak: a long run of mixed native adapter calls, watching the process RSS for growth.
// `npm run bench:soak -- --help` for options.
import path from 'node:path'
import * as L from './lib.mjs'

const SPEC = {
  calls: { type: 'number', default: 1_000_000, help: 'total calls' },
  every: { type: 'number', default: 50_000, help: 'sample RSS every this many calls' },
  warmup: { type: 'number', default: 50_000, help: 'calls before the first sample' },
  inflight: { type: 'number', default: 32, help: 'calls kept in flight' },
  rows: { type: 'number', default: 10000, help: 'rows seeded in agents, audit logs and trust scores' },
  db: { type: 'string', default: path.join(L.BENCH_DIR, '.data', 'soak.db'), help: 'SQLite file (recreated and seeded at start)' },
  help: { type: 'flag', help: 'show this help' },
}

let args
try { args = L.parseArgs(process.argv.slice(2), SPEC) } catch (e) { console.error(e.message); process.exit(2) }
if (args.help) { console.log(L.usage(SPEC, 'npm run bench:soak -- [options]')); process.exit(0) }
if (!(args.calls > 0 && args.every > 0 && args.warmup >= 0 && args.inflight >= 1)) { console.error('bad --calls / --every / --warmup / --inflight'); process.exit(2) }

const stale = L.staleBuildWarning()
if (stale) console.error(stale)
console.error(`seeding ${args.db} (${args.rows} rows per table) ...`)
L.seed(args.db, args.rows)
const shape = L.dataShape(args.rows)
const db = L.nativeAdapter(args.db)
const admin = new L.Database(args.db, { timeout: 10000 })

const spread = (i, n) => (i * 7919) % n
const now = () => new Date()
let uid = 0
const expected = (code) => (e) => { if (e?.code !== code) throw e; return 'expected-error' }
class Abort extends Error {}

// Mostly point reads, some scans, writes, transactions, and error paths (each error path must fail
// in the expected way: a failure of any other kind stops the run).
const MIX = [
  [86, 'findAgentById', (i) => db.findAgentById(L.agentId(spread(i, shape.rows)))],
  [2, 'findAgentById (missing)', (i) => db.findAgentById(`missing-${i}`)],
  [3, 'queryAuditLogs', (i) => db.queryAuditLogs({ agentId: L.agentId(spread(i, L.AUDIT_AGENTS)), since: shape.since, limit: L.AUDIT_LIMIT })],
  [1, 'listAgents', (i) => db.listAgents({ ownerId: L.ownerId(spread(i, shape.owners)) })],
  [1, 'findAgentByTokenHash', (i) => db.findAgentByTokenHash(L.tokenHash(spread(i, shape.rows)))],
  [2, 'createAuditLog', () => db.createAuditLog({
    id: `soak-log-${++uid}`, agentId: 'soak-writer', userId: 'soak-user', action: 'read', resource: 'mcp:github:repo',
    parameters: { path: '/v1/items', n: uid }, result: 'allowed', durationMs: 12, tokensCost: 3, timestamp: now(),
  })],
  [2, 'upsertTrustScore', (i) => db.upsertTrustScore({
    agentId: L.agentId(spread(i, shape.rows)), score: i % 100, level: 'medium', factors: { n: i % 7 }, computedAt: now(),
  })],
  [1, 'transaction', () => db.transaction(async (tx) => {
    const id = `soak-agent-${++uid}`
    await tx.createAgent({ id, ownerId: 'soak-owner', name: id, type: 'autonomous', tokenHash: `soak-${id}`, tokenPrefix: 'kv_', createdAt: now(), updatedAt: now() })
    await tx.createPermission({ id: `${id}-p1`, agentId: id, resource: 'r1', actions: ['read'], createdAt: now() })
    await tx.createPermission({ id: `${id}-p2`, agentId: id, resource: 'r2', actions: ['write'], createdAt: now() })
  })],
  [1, 'createAgent (duplicate id, P2002)', () => db.createAgent({
    id: L.agentId(0), ownerId: 'soak-owner', name: 'dup', type: 'autonomous', tokenHash: 'dup', tokenPrefix: 'kv_', createdAt: now(), updatedAt: now(),
  }).then(() => { throw new Error('duplicate createAgent succeeded') }, expected('P2002'))],
  [1, 'transaction (fn throws, rollback)', () => db.transaction(async (tx) => {
    await tx.createAuditLog({ id: `soak-rolled-back-${++uid}`, agentId: 'soak-writer', userId: 'u', action: 'a', resource: 'r', result: 'allowed', durationMs: 1, timestamp: now() })
    throw new Abort('abort')
  }).then(() => { throw new Error('transaction did not reject') }, (e) => { if (!(e instanceof Abort)) throw e })],
]
const table = []
for (const [weight, name, fn] of MIX) for (let k = 0; k < weight; k++) table.push({ name, fn })
const pick = (i) => table[(i * 40503) % table.length]

function cleanup() {
  admin.exec(`DELETE FROM kavach_audit_logs WHERE id LIKE 'soak-log-%';
    DELETE FROM kavach_permissions WHERE agent_id LIKE 'soak-agent-%';
    DELETE FROM kavach_agents WHERE id LIKE 'soak-agent-%';`)
  admin.pragma('wal_checkpoint(TRUNCATE)')
}

const mb = (bytes) => bytes / 2 ** 20
const samples = []
let started = 0, done = 0, inFlight = 0, gate = null
let nextSample = args.warmup > 0 ? args.warmup : args.every
let windowStart = performance.now(), windowCalls = 0
const t0 = performance.now()

/** Lets the calls in flight finish, then deletes the rows the writes added, collects garbage and samples. */
async function sample() {
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1))
  const opsPerSec = ((done - windowCalls) * 1000) / (performance.now() - windowStart)
  cleanup()
  globalThis.gc?.()
  const m = process.memoryUsage()
  samples.push({ calls: done, rss: mb(m.rss), heap: mb(m.heapUsed), external: mb(m.external), opsPerSec })
  console.error(`${String(done).padStart(9)} calls  rss ${mb(m.rss).toFixed(1)} MB  heap ${mb(m.heapUsed).toFixed(1)} MB  ${opsPerSec.toFixed(0)} calls/s`)
  while (nextSample <= done) nextSample += args.every
  windowStart = performance.now()
  windowCalls = done
  gate = null
}

async function worker() {
  for (;;) {
    if (gate) await gate
    if (started >= args.calls) return
    const i = started++
    inFlight++
    try {
      await pick(i).fn(i)
    } finally {
      inFlight--
      done++
    }
    if (!gate && (done >= nextSample || done === args.calls)) gate = sample()
  }
}

try {
  await Promise.all(Array.from({ length: args.inflight }, worker))
  if (gate) await gate
} catch (e) {
  console.error(`soak stopped after ${done} calls: an unexpected failure`, e)
  process.exit(1)
}
await db.close()
admin.close()

const seconds = (performance.now() - t0) / 1000
console.log(`\nsoak: ${done} mixed native calls (${args.inflight} in flight) in ${seconds.toFixed(1)} s, ${(done / seconds).toFixed(0)} calls/s; ` +
  `gc ${globalThis.gc ? 'forced before each sample' : 'not exposed (run with --expose-gc)'}`)
console.log(`mix: ${MIX.map(([w, n]) => `${n} ${w}%`).join(', ')}`)
console.log('\n    calls    RSS MB   heap MB   external MB   calls/s')
for (const s of samples) {
  console.log(`${String(s.calls).padStart(9)}  ${s.rss.toFixed(1).padStart(8)}  ${s.heap.toFixed(1).padStart(8)}  ${s.external.toFixed(1).padStart(12)}  ${s.opsPerSec.toFixed(0).padStart(8)}`)
}
if (samples.length >= 2) {
  const first = samples[0], last = samples[samples.length - 1]
  const pct = ((last.rss - first.rss) / first.rss) * 100
  const rss = samples.map((s) => s.rss)
  console.log(`\nRSS from ${first.calls} to ${last.calls} calls: ${first.rss.toFixed(1)} → ${last.rss.toFixed(1)} MB ` +
    `(${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%); min ${Math.min(...rss).toFixed(1)}, max ${Math.max(...rss).toFixed(1)} MB`)
  // A step early on (allocator arenas, SQLite page caches filling) is not a leak; steady growth
  // through the second half is.
  const mid = samples[Math.floor((samples.length - 1) / 2)]
  if (samples.length >= 3 && mid !== last) {
    const half = ((last.rss - mid.rss) / mid.rss) * 100
    console.log(`second half, from ${mid.calls} to ${last.calls} calls: ${mid.rss.toFixed(1)} → ${last.rss.toFixed(1)} MB (${half >= 0 ? '+' : ''}${half.toFixed(1)}%)`)
  }
} else {
  console.log('\nfewer than two samples: raise --calls or lower --warmup / --every')
}
