// kavach-native on the app's own Prisma 7 client (issue #12): `createAdapter(prisma)` and
// `createAdapter(tx)` inside the app's `$transaction`, on an app schema that holds the
// KavachOS models plus one model of the app's own (Subscription), on the provider under test.
// The tables are made with schemaDdl() and the app model's DDL: the adapter never creates
// tables through a client.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { appModelDdl, clientDirFor } from './parity/prisma-client.mjs'
import { make, provider, serverUrl, T0 } from './fixtures'

const require = createRequire(import.meta.url)
const native = require('../index.js')
const { PrismaClient, Prisma } = require(clientDirFor(provider, { app: true }))

let counter = 0
const created: string[] = []
const dirs: string[] = []

/** A fresh database holding every kavach_* table and the app's table (unless `bare`). */
async function freshDatabase(bare = false): Promise<any> {
  const name = `kc_${process.pid}_${Date.now().toString(36)}_${++counter}`
  const ddl = bare ? [] : [...(native.schemaDdl(provider) as string[]), appModelDdl(provider)]
  if (provider === 'sqlite') {
    const Database = require('better-sqlite3')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-client-'))
    dirs.push(dir)
    const file = path.join(dir, `${name}.db`)
    const db = new Database(file)
    for (const statement of ddl) db.exec(statement)
    db.close()
    const { PrismaBetterSqlite3 } = require('@prisma/adapter-better-sqlite3')
    return new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) })
  }
  created.push(name)
  if (provider === 'postgresql') {
    const pg = require('pg')
    const client = new pg.Client({ connectionString: serverUrl() })
    await client.connect()
    await client.query(`CREATE SCHEMA "${name}"`)
    await client.query(`SET search_path TO "${name}"`)
    for (const statement of ddl) await client.query(statement)
    await client.end()
    const { PrismaPg } = require('@prisma/adapter-pg')
    // Raw statements run on the connection's search_path (the driver adapter's `schema`
    // option only qualifies the model API's own statements).
    return new PrismaClient({ adapter: new PrismaPg({ connectionString: serverUrl(), options: `-c search_path=${name}` }, { schema: name }) })
  }
  const mysql = require('mysql2/promise')
  const conn = await mysql.createConnection(serverUrl())
  await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  await conn.query(`USE \`${name}\``)
  for (const statement of ddl) await conn.query(statement)
  await conn.end()
  const { PrismaMariaDb } = require('@prisma/adapter-mariadb')
  const url = new URL(serverUrl())
  return new PrismaClient({
    adapter: new PrismaMariaDb({ host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username || 'root'), password: url.password || undefined, database: name }),
  })
}

afterAll(async () => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  if (!created.length) return
  if (provider === 'postgresql') {
    const pg = require('pg')
    const client = new pg.Client({ connectionString: serverUrl() })
    await client.connect()
    for (const name of created) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
    await client.end()
  } else {
    const mysql = require('mysql2/promise')
    const conn = await mysql.createConnection(serverUrl())
    for (const name of created) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await conn.end()
  }
})

let prisma: any
beforeEach(async () => {
  prisma = await freshDatabase()
})
afterEach(async () => {
  await prisma.$disconnect()
})

const subscription = (id: string) => ({ id, userId: 'user-1', plan: 'pro', createdAt: T0 })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe(`createAdapter(prisma) on ${provider}`, () => {
  it("runs the docs' example unchanged: kavach writes and the app's commit together", async () => {
    await prisma.$transaction(async (tx: any) => {
      const kavach = native.createAdapter(tx)
      await kavach.createAgent(make.agent({ id: 'agent-1' }))
      await tx.subscription.create({ data: subscription('sub-1') })
    })
    const kavach = native.createAdapter(prisma)
    expect((await kavach.findAgentById('agent-1'))?.id).toBe('agent-1')
    expect(await prisma.subscription.findUnique({ where: { id: 'sub-1' } })).not.toBeNull()
    // Stored as Prisma's model API stores it: the app's client reads the row back identically.
    const viaPrisma = await prisma.kavachAgent.findUnique({ where: { id: 'agent-1' } })
    expect(await kavach.findAgentById('agent-1')).toEqual(viaPrisma)
  })

  it("rolls back together with the app's writes, rejecting with the app's own error", async () => {
    const own = new Error('the app changed its mind')
    const outcome = await prisma
      .$transaction(async (tx: any) => {
        const kavach = native.createAdapter(tx)
        await tx.subscription.create({ data: subscription('sub-2') })
        await kavach.createUser(make.user({ id: 'user-2' }))
        throw own
      })
      .catch((e: unknown) => e)
    expect(outcome).toBe(own)
    expect(await native.createAdapter(prisma).findUserById('user-2')).toBeNull()
    expect(await prisma.subscription.findUnique({ where: { id: 'sub-2' } })).toBeNull()
  })

  it('sees the transaction’s uncommitted rows both ways; outside, they stay invisible until the commit', async () => {
    const outside = native.createAdapter(prisma)
    let release!: () => void
    let reached!: () => void
    const inside = new Promise<void>((resolve) => (reached = resolve))
    const done = prisma.$transaction(async (tx: any) => {
      const kavach = native.createAdapter(tx)
      await kavach.createAgent(make.agent({ id: 'agent-3' }))
      expect((await tx.kavachAgent.findUnique({ where: { id: 'agent-3' } }))?.id).toBe('agent-3')
      await tx.kavachUser.create({ data: make.user({ id: 'user-3', metadata: { plan: 'pro' } }) })
      expect((await kavach.findUserById('user-3'))?.metadata).toEqual({ plan: 'pro' })
      reached()
      await new Promise<void>((resolve) => (release = resolve))
    })
    await inside
    // SQLite: one shared connection, and the root client sees the open transaction's rows
    // (Prisma's own behaviour); the servers isolate them.
    if (provider !== 'sqlite') expect(await outside.findAgentById('agent-3')).toBeNull()
    release()
    await done
    expect((await outside.findAgentById('agent-3'))?.id).toBe('agent-3')
  })

  it('adapter.transaction on a root client commits, rolls back, and a nested one joins', async () => {
    const kavach = native.createAdapter(prisma)
    const value = await kavach.transaction(async (tx: any) => {
      await tx.createUser(make.user({ id: 'user-4' }))
      return tx.transaction(async (inner: any) => (await inner.findUserById('user-4'))?.id)
    })
    expect(value).toBe('user-4')
    const own = new Error('no')
    expect(await kavach.transaction(async (tx: any) => {
      await tx.createUser(make.user({ id: 'user-5' }))
      throw own
    }).catch((e: unknown) => e)).toBe(own)
    expect(await kavach.findUserById('user-5')).toBeNull()
  })

  it('adapter.transaction on a transaction client joins the open transaction', async () => {
    const own = new Error('roll it all back')
    await prisma
      .$transaction(async (tx: any) => {
        const kavach = native.createAdapter(tx)
        await kavach.transaction(async (ktx: any) => {
          await ktx.createUser(make.user({ id: 'user-6' }))
        })
        expect((await tx.kavachUser.findUnique({ where: { id: 'user-6' } }))?.id).toBe('user-6')
        throw own
      })
      .catch(() => {})
    expect(await native.createAdapter(prisma).findUserById('user-6')).toBeNull()
  })

  it("errors are the app's Prisma errors: instanceof, code, meta and clientVersion", async () => {
    const kavach = native.createAdapter(prisma)
    await kavach.createUser(make.user({ id: 'user-7', email: 'dup@example.com' }))
    const duplicate = await kavach.createUser(make.user({ id: 'user-8', email: 'dup@example.com' })).catch((e: any) => e)
    expect(duplicate).toBeInstanceOf(Prisma.PrismaClientKnownRequestError)
    expect(duplicate.code).toBe('P2002')
    expect(duplicate.meta.modelName).toBe('KavachUser')
    expect(duplicate.meta.target).toEqual(['email'])
    expect(duplicate.clientVersion).toBe(Prisma.prismaVersion.client)
    const missing = await kavach.updateUser('nobody', { name: 'x' }).catch((e: any) => e)
    expect(missing).toBeInstanceOf(Prisma.PrismaClientKnownRequestError)
    expect(missing.code).toBe('P2025')
    expect(missing.meta).toEqual({ modelName: 'KavachUser', operation: 'an update' })
    const invalid = await kavach.createUser({ id: 'user-9' }).catch((e: any) => e)
    expect(invalid).toBeInstanceOf(Prisma.PrismaClientValidationError)
    // The usual handler, unchanged after the swap from @kavachos/prisma.
    const handled = (e: unknown) => e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002'
    expect(handled(duplicate)).toBe(true)
  })

  it("the transaction's timeout and P2028 are Prisma's", async () => {
    let kavach: any
    const expired = await prisma
      .$transaction(
        async (tx: any) => {
          kavach = native.createAdapter(tx)
          await kavach.findUserById('x')
          await sleep(400)
          await kavach.findUserById('x')
        },
        { timeout: 150 },
      )
      .catch((e: any) => e)
    expect(expired).toBeInstanceOf(Prisma.PrismaClientKnownRequestError)
    expect(expired.code).toBe('P2028')
    // A call on the transaction's adapter once it is over: Prisma's P2028.
    const late = await kavach.findUserById('x').catch((e: any) => e)
    expect(late).toBeInstanceOf(Prisma.PrismaClientKnownRequestError)
    expect(late.code).toBe('P2028')
  })

  it('missing tables and columns are P2021 / P2022 with modelName', async () => {
    const bare = await freshDatabase(true)
    try {
      const kavach = native.createAdapter(bare)
      const error = await kavach.findAgentById('x').catch((e: any) => e)
      expect(error).toBeInstanceOf(Prisma.PrismaClientKnownRequestError)
      expect(error.code).toBe('P2021')
      expect(error.meta.modelName).toBe('KavachAgent')
      expect(error.meta.table).toBe('kavach_agents')
    } finally {
      await bare.$disconnect()
    }
    const column = provider === 'mysql' ? '`name`' : '"name"'
    await prisma.$executeRawUnsafe(`ALTER TABLE kavach_users DROP COLUMN ${column}`)
    const error = await native.createAdapter(prisma).findUserById('x').catch((e: any) => e)
    expect(error.code).toBe('P2022')
    expect(error.meta.modelName).toBe('KavachUser')
  })

  it("connect() and close() leave the app's client alone; no tables are created through it", async () => {
    const bare = await freshDatabase(true)
    try {
      const kavach = native.createAdapter(bare)
      expect(await kavach.connect()).toEqual([])
      await kavach.close()
      const tables = await bare.$queryRawUnsafe(
        provider === 'sqlite'
          ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'kavach%'"
          : provider === 'postgresql'
            ? "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'kavach%'"
            : "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'kavach%'",
      )
      expect(tables).toEqual([])
    } finally {
      await bare.$disconnect()
    }
    const kavach = native.createAdapter(prisma)
    await kavach.close()
    expect(await prisma.subscription.count()).toBe(0)
  })

  it('folds point reads started together into one statement, each call getting its own row', async () => {
    const kavach = native.createAdapter(prisma)
    for (let i = 0; i < 5; i++) await kavach.createUser(make.user({ id: `fold-${i}`, email: `fold-${i}@example.com` }))
    const statements: string[] = []
    const counting = prisma.$extends({
      client: {
        $queryRawUnsafe(sql: string, ...params: unknown[]) {
          statements.push(sql)
          return prisma.$queryRawUnsafe(sql, ...params)
        },
      },
    })
    const folded = native.createAdapter(counting)
    const ids = ['fold-3', 'nobody', 'fold-0', 'fold-4', 'fold-3']
    const [byId, byEmail, invalid] = await Promise.all([
      Promise.all(ids.map((id) => folded.findUserById(id))),
      Promise.all(['fold-1@example.com', 'none@example.com'].map((email) => folded.findUserByEmail(email))),
      folded.findUserById(undefined).catch((e: any) => e),
    ])
    expect(byId.map((u: any) => u?.id ?? null)).toEqual(['fold-3', null, 'fold-0', 'fold-4', 'fold-3'])
    expect(byEmail.map((u: any) => u?.id ?? null)).toEqual(['fold-1', null])
    expect(invalid).toBeInstanceOf(Prisma.PrismaClientValidationError)
    // One statement per method: the five findUserById, and the two findUserByEmail.
    expect(statements).toHaveLength(2)
    expect(byId[0]).toEqual(await kavach.findUserById('fold-3'))
    // In the app's transaction too, where every statement takes a turn on its one connection.
    await prisma.$transaction(async (tx: any) => {
      const inTx = native.createAdapter(tx)
      await inTx.createUser(make.user({ id: 'fold-tx', email: 'fold-tx@example.com' }))
      const found = await Promise.all(['fold-tx', 'fold-2', 'nobody'].map((id) => inTx.findUserById(id)))
      expect(found.map((u: any) => u?.id ?? null)).toEqual(['fold-tx', 'fold-2', null])
    })
  })

  it('works on an $extends-ed client', async () => {
    const extended = prisma.$extends({ name: 'noop' })
    const kavach = native.createAdapter(extended)
    await kavach.createUser(make.user({ id: 'user-10' }))
    expect((await kavach.findUserById('user-10'))?.id).toBe('user-10')
  })

  it('refuses what is not a Prisma client, and providers it cannot run on', () => {
    expect(() => native.createAdapter({})).toThrow(/Prisma client/)
    const mongo = { _activeProvider: 'mongodb', $queryRawUnsafe() {}, $executeRawUnsafe() {} }
    expect(() => native.createAdapter(mongo)).toThrow(/provider is 'mongodb'/)
  })
})

describe('URL mode errors', () => {
  it("are instances of the app's @prisma/client classes when it resolves", async () => {
    const kavach = native.createAdapter(':memory:')
    try {
      const error = await kavach.updateUser('nobody', { name: 'x' }).catch((e: any) => e)
      expect(error).toBeInstanceOf(Prisma.PrismaClientKnownRequestError)
      expect(error.code).toBe('P2025')
      expect(native.PrismaClientKnownRequestError).toBe(Prisma.PrismaClientKnownRequestError)
    } finally {
      await kavach.close()
    }
  })
})
