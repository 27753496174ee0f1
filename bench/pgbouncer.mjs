// Throughput of kavach-native on PostgreSQL directly, through PgBouncer (transaction and
// session pooling, `pgbouncer=true`) and with a read replica, with ratios to direct. Each
// contender gets a fresh schema (dropped after). Servers: scripts/servers.sh.
//   node bench/pgbouncer.mjs [--seconds 3] [--inflight 64]
import pg from 'pg'
import { createAdapter } from '../index.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const seconds = arg('seconds', 3)
const inflight = arg('inflight', 64)
const direct = process.env.KAVACH_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
const contenders = [
  { name: 'direct', url: direct },
  { name: 'pgbouncer transaction', url: process.env.KAVACH_TEST_PGBOUNCER_TX_URL ?? 'postgresql://postgres@127.0.0.1:6432/test', params: { pgbouncer: 'true' } },
  { name: 'pgbouncer session', url: process.env.KAVACH_TEST_PGBOUNCER_SESSION_URL ?? 'postgresql://postgres@127.0.0.1:6433/test', params: { pgbouncer: 'true' } },
  { name: 'direct + replica', url: direct, replicas: [process.env.KAVACH_TEST_PG_REPLICA_URL ?? 'postgresql://postgres@127.0.0.1:5433/test'] },
]
const T0 = new Date('2025-01-02T03:04:05.678Z')

async function rate(fn) {
  const end = Date.now() + seconds * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: inflight }, async (_, lane) => {
      for (let i = 0; Date.now() < end; i++) {
        await fn(lane, i)
        done++
      }
    }),
  )
  return done / seconds
}

const results = []
for (const c of contenders) {
  const schema = `kb_${process.pid}_${results.length}`
  const url = new URL(c.url)
  url.searchParams.set('schema', schema)
  for (const [k, v] of Object.entries(c.params ?? {})) url.searchParams.set(k, v)
  const db = createAdapter(url.toString(), c.replicas ? { replicas: c.replicas } : undefined)
  try {
    for (let i = 0; i < 100; i++) await db.createUser({ id: `seed-${i}`, email: `seed-${i}@example.com`, createdAt: T0, updatedAt: T0 })
    const reads = await rate((lane, i) => db.findUserById(`seed-${(lane + i) % 100}`))
    const creates = await rate((lane, i) => db.createUser({ id: `u-${lane}-${i}`, email: `u-${lane}-${i}@example.com`, createdAt: T0, updatedAt: T0 }))
    const readAfterWrite = await rate(async (lane, i) => {
      await db.updateUser(`seed-${lane}`, { name: `n${i}` })
      await db.findUserById(`seed-${lane}`)
    })
    results.push({ name: c.name, reads, creates, readAfterWrite })
  } finally {
    await db.close()
    const client = new pg.Client({ connectionString: direct })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await client.end()
  }
}
const base = results[0]
console.log(`${inflight} calls in flight, ${seconds} s each; calls/s (ratio to direct)`)
console.log('| contender | findUserById | createUser | updateUser + findUserById |')
console.log('| --- | --- | --- | --- |')
const cell = (v, b) => `${Math.round(v)} (${(v / b).toFixed(2)}×)`
for (const r of results) console.log(`| ${r.name} | ${cell(r.reads, base.reads)} | ${cell(r.creates, base.creates)} | ${cell(r.readAfterWrite, base.readAfterWrite)} |`)
