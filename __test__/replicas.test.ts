// Read replicas on a real streaming standby of the PostgreSQL under test (scripts/servers.sh
// starts it on 127.0.0.1:5433; KAVACH_TEST_PG_REPLICA_URL): reads go to it, writes and
// transactions to the primary, $primary() forces the primary, and after this adapter writes its
// reads never see an older state — with replay paused, and while the standby is killed and
// started again under load.
import { execFileSync } from 'node:child_process'
import { Client } from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createAdapter } from '../index.js'
import { dropFreshDatabases, freshUrl, make, provider, serverUrl, withParams } from './fixtures'

const replicaUrl = process.env.KAVACH_TEST_PG_REPLICA_URL
const APP_NAME = 'kavach-replica-test'
afterAll(() => dropFreshDatabases())

async function onReplica<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: replicaUrl })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A fresh schema with the tables, and the standby showing them. */
async function freshReplicatedUrl(): Promise<string> {
  const url = await freshUrl()
  const setup = createAdapter(url)
  await setup.connect()
  await setup.close()
  const schema = new URL(url).searchParams.get('schema')
  const deadline = Date.now() + 20_000
  while (!(await onReplica(async (c) => (await c.query(`SELECT to_regclass('"${schema}".kavach_users') AS t`)).rows[0].t))) {
    if (Date.now() > deadline) throw new Error('the standby did not replay the new schema in 20 s')
    await new Promise((r) => setTimeout(r, 50))
  }
  return url
}

describe.skipIf(provider !== 'postgresql' || !replicaUrl)('read replicas (PostgreSQL streaming standby)', () => {
  it('reads go to the replica, writes to the primary; after a write, reads wait for the replica or use the primary', async () => {
    const url = await freshReplicatedUrl()
    const db = createAdapter(url, { replicas: [replicaUrl!] })
    const other = createAdapter(url)
    await onReplica((c) => c.query('SELECT pg_wal_replay_pause()'))
    try {
      // Written by another adapter while replay is paused: this one's reads are on the replica.
      const theirs = make.user()
      await other.createUser(theirs)
      expect(await db.findUserById(theirs.id)).toBeNull()
      expect((await db.$primary().findUserById(theirs.id))?.email).toBe(theirs.email)
      // Its own write: the replica has not replayed it, so the read goes to the primary.
      const mine = make.user()
      await db.createUser(mine)
      expect((await db.findUserById(mine.id))?.email).toBe(mine.email)
      expect((await db.findUserById(theirs.id))?.email).toBe(theirs.email)
      await db.updateUser(mine.id, { name: 'renamed' })
      expect((await db.findUserById(mine.id))?.name).toBe('renamed')
      await db.transaction(async (tx) => {
        await tx.createUser(make.user({ id: 'in-tx' }))
      })
      expect(await db.findUserById('in-tx')).not.toBeNull()
      await expect(db.$primary().transaction(async (tx) => tx.findUserById('in-tx'))).resolves.not.toBeNull()
    } finally {
      await onReplica((c) => c.query('SELECT pg_wal_replay_resume()'))
      await db.close()
      await other.close()
    }
    // Caught up again: a fresh adapter (no writes of its own) reads there.
    const reader = createAdapter(url, { replicas: [replicaUrl!] })
    const deadline = Date.now() + 10_000
    while ((await reader.findUserById('in-tx')) === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(await reader.findUserById('in-tx')).not.toBeNull()
    await reader.close()
  })

  it.skipIf(process.getuid?.() !== 0)('the standby killed and started again under load: no stale read, no failed call', async () => {
    const url = await freshReplicatedUrl()
    const [dataDir, binDir] = await onReplica(async (c) => [
      (await c.query('SHOW data_directory')).rows[0].data_directory as string,
      (await c.query("SELECT setting FROM pg_config WHERE name = 'BINDIR'")).rows[0].setting as string,
    ])
    const pgCtl = (...args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', `${binDir}/pg_ctl`, '-D', dataDir, ...args], { stdio: 'ignore' })
    const db = createAdapter(url, { replicas: [withParams(replicaUrl!, { application_name: APP_NAME })] })
    let stale = 0
    let failed = 0
    let calls = 0
    let slowest = 0
    let running = true
    const worker = async (n: number) => {
      for (let i = 0; running; i++) {
        const user = make.user({ id: `load-${n}-${i}`, name: 'v0' })
        const started = Date.now()
        try {
          await db.createUser(user)
          if ((await db.findUserById(user.id))?.name !== 'v0') stale++
          await db.updateUser(user.id, { name: 'v1' })
          if ((await db.findUserById(user.id))?.name !== 'v1') stale++
          if ((await db.findUserByEmail(user.email))?.id !== user.id) stale++
          calls += 5
        } catch (e) {
          failed++
        }
        slowest = Math.max(slowest, Date.now() - started)
      }
    }
    const load = Promise.all([0, 1, 2, 3].map(worker))
    const timings: Record<string, number> = {}
    try {
      // A restartpoint first (a standby makes one only at a checkpoint of the primary), so that
      // the restart replays seconds of WAL, not up to a checkpoint_timeout's worth of the suite's.
      const primary = new Client({ connectionString: serverUrl() })
      await primary.connect()
      await primary.query('CHECKPOINT')
      const lsn = (await primary.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn
      await primary.end()
      await onReplica(async (c) => {
        while (!(await c.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0].ok) await new Promise((r) => setTimeout(r, 20))
        await c.query('CHECKPOINT')
      })
      await new Promise((r) => setTimeout(r, 1000))
      let t = Date.now()
      pgCtl('stop', '-m', 'immediate')
      timings.killMs = Date.now() - t
      await new Promise((r) => setTimeout(r, 1500))
      t = Date.now()
      pgCtl('start', '-w', '-t', '60', '-l', `${dataDir}/../replica.log`)
      timings.restartMs = Date.now() - t
      // Back in use: the adapter's replica connections show up on the standby again.
      t = Date.now()
      const deadline = t + 20_000
      while (Date.now() < deadline) {
        const n = await onReplica(async (c) => Number((await c.query('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [APP_NAME])).rows[0].n))
        if (n > 0) break
        await new Promise((r) => setTimeout(r, 50))
      }
      timings.backInUseMs = Date.now() - t
      await new Promise((r) => setTimeout(r, 500))
    } finally {
      running = false
      await load
      await db.close()
    }
    console.log(`replica kill/restart under load: ${calls} calls, ${stale} stale reads, ${failed} failed, slowest flow ${slowest} ms`, timings)
    expect(timings.backInUseMs).toBeLessThan(20_000)
    expect(calls).toBeGreaterThan(0)
    expect(stale).toBe(0)
    expect(failed).toBe(0)
  }, 120_000)

  it('refuses replicas on MySQL/SQLite URLs and non-PostgreSQL replica URLs', () => {
    expect(() => createAdapter(':memory:', { replicas: [replicaUrl!] })).toThrow(/PostgreSQL only/)
    expect(() => createAdapter(serverUrl(), { replicas: ['mysql://root@127.0.0.1:3306/test'] })).toThrow(/postgresql:\/\/ URL/)
    expect(() => createAdapter(serverUrl(), { replicas: 'x' as any })).toThrow(/array of postgresql/)
  })
})
