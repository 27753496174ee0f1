// Server plumbing for the differential test on PostgreSQL and MySQL/MariaDB: fresh schemas /
// databases with every kavach_* table made from the native adapter's own DDL, the native adapter
// and the Prisma 7 oracle (@kavachos/prisma over PrismaClient + @prisma/adapter-pg or
// @prisma/adapter-mariadb) on them, and a dump of every kavach_* table for comparison.
import { createRequire } from 'node:module'
import { createPrismaAdapter } from '@kavachos/prisma'
import { PrismaMariaDb } from '@prisma/adapter-mariadb'
import { PrismaPg } from '@prisma/adapter-pg'
import type { Adapter, TableDump } from './harness'
import { clientDirFor } from './prisma-client.mjs'

const require = createRequire(import.meta.url)
const native = require('../../index.js')
const pg = require('pg')
const mysql = require('mysql2/promise')

export type ServerProvider = 'postgresql' | 'mysql'

export function serverUrl(provider: ServerProvider): string | undefined {
  return provider === 'postgresql' ? process.env.KAVACH_TEST_PG_URL : process.env.KAVACH_TEST_MYSQL_URL
}

function requireUrl(provider: ServerProvider): string {
  const url = serverUrl(provider)
  if (!url) throw new Error(`no URL for ${provider}: set ${provider === 'postgresql' ? 'KAVACH_TEST_PG_URL' : 'KAVACH_TEST_MYSQL_URL'}`)
  return url
}

let counter = 0
/** A name no other run uses: lower case, valid unquoted on both servers. */
export function freshName(label: string): string {
  return `kp_${process.pid}_${Date.now().toString(36)}_${++counter}_${label}`.toLowerCase().replace(/[^a-z0-9_]/g, '_')
}

/** Runs `fn` with a raw driver connection to the server (PostgreSQL: database of the URL; MySQL: no default database). */
async function withConnection<T>(provider: ServerProvider, fn: (query: (sql: string) => Promise<any>) => Promise<T>, database?: string): Promise<T> {
  const url = requireUrl(provider)
  if (provider === 'postgresql') {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return await fn((sql) => client.query(sql))
    } finally {
      await client.end()
    }
  }
  const u = new URL(url)
  if (database !== undefined) u.pathname = `/${database}`
  const conn = await mysql.createConnection({ uri: u.toString(), dateStrings: true, supportBigNumbers: true, bigNumberStrings: true })
  try {
    return await fn(async (sql) => (await conn.query(sql))[0])
  } finally {
    await conn.end()
  }
}

/**
 * Creates a schema (PostgreSQL) / database (MySQL) named `name` holding every kavach_* table,
 * made with `schemaDdl(provider)` (what Prisma's migrations would create).
 */
export async function createServerDatabase(provider: ServerProvider, name: string): Promise<void> {
  const ddl = native.schemaDdl(provider) as string[]
  if (provider === 'postgresql') {
    await withConnection(provider, async (q) => {
      await q(`CREATE SCHEMA "${name}"`)
      await q(`SET search_path TO "${name}"`)
      for (const statement of ddl) await q(statement)
    })
    return
  }
  await withConnection(provider, (q) => q(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`))
  await withConnection(provider, async (q) => {
    for (const statement of ddl) await q(statement)
  }, name)
}

export async function dropServerDatabases(provider: ServerProvider, names: string[]): Promise<void> {
  if (!names.length) return
  await withConnection(provider, async (q) => {
    for (const name of names) await q(provider === 'postgresql' ? `DROP SCHEMA IF EXISTS "${name}" CASCADE` : `DROP DATABASE IF EXISTS \`${name}\``)
  })
}

/**
 * The server URL pointing at schema / database `name`; for the native adapter in the PgBouncer
 * projects (KAVACH_TEST_PGBOUNCER_URL), through that PgBouncer with `pgbouncer=true`.
 */
export function urlFor(provider: ServerProvider, name: string, through = false): string {
  const bouncer = through && provider === 'postgresql' ? process.env.KAVACH_TEST_PGBOUNCER_URL : undefined
  const u = new URL(bouncer ?? requireUrl(provider))
  if (bouncer) u.searchParams.set('pgbouncer', 'true')
  // A small pool, as the Prisma side's: parity runs many seeds in parallel processes.
  if (!u.searchParams.has('connection_limit')) u.searchParams.set('connection_limit', '5')
  if (provider === 'postgresql') u.searchParams.set('schema', name)
  else u.pathname = `/${name}`
  return u.toString()
}

export function openNativeServer(provider: ServerProvider, name: string): { adapter: Adapter; close: () => Promise<void> } {
  const adapter = native.createAdapter(urlFor(provider, name, true), { skipMigrations: true })
  return { adapter, close: async () => adapter.close() }
}

/** Bridge mode: the native adapter on its own Prisma 7 client, opened as the oracle's. */
export function openNativeBridgeServer(provider: ServerProvider, name: string): { adapter: Adapter; prisma: any; close: () => Promise<void> } {
  const prisma = prismaClient(provider, name)
  const adapter = native.createAdapter(prisma)
  return { adapter, prisma, close: () => prisma.$disconnect() }
}

const clients = new Map<ServerProvider, any>()
/** A Prisma 7 client on schema / database `name`, with the provider's driver adapter. */
export function prismaClient(provider: ServerProvider, name: string): any {
  let PrismaClient = clients.get(provider)
  if (!PrismaClient) {
    PrismaClient = require(clientDirFor(provider)).PrismaClient
    clients.set(provider, PrismaClient)
  }
  const url = new URL(requireUrl(provider))
  const driver =
    provider === 'postgresql'
      ? new PrismaPg({ connectionString: url.toString(), max: 5, options: `-c search_path=${name}` }, { schema: name })
      : new PrismaMariaDb({
          host: url.hostname,
          port: Number(url.port || 3306),
          user: decodeURIComponent(url.username || 'root'),
          password: url.password ? decodeURIComponent(url.password) : undefined,
          database: name,
          connectionLimit: 5,
        })
  return new PrismaClient({ adapter: driver })
}

export function openPrismaServer(provider: ServerProvider, name: string): { adapter: Adapter; prisma: any; close: () => Promise<void> } {
  const prisma = prismaClient(provider, name)
  const adapter = createPrismaAdapter(prisma) as unknown as Adapter
  return { adapter, prisma, close: () => prisma.$disconnect() }
}

/**
 * Every kavach_* table of schema / database `name`: per table, one canonical string per row in
 * primary-key order. Values are read as the server's text (no driver conversion: timestamps,
 * integers and booleans exactly as stored); PostgreSQL jsonb is compared as parsed JSON
 * (re-serialised), MySQL/MariaDB JSON (a LONGTEXT on MariaDB) as its stored text.
 */
export async function dumpServerTables(provider: ServerProvider, name: string): Promise<TableDump> {
  const out: TableDump = new Map()
  if (provider === 'postgresql') {
    const raw = (v: string) => v
    const client = new pg.Client({ connectionString: requireUrl(provider), types: { getTypeParser: () => raw } })
    await client.connect()
    try {
      const tables: string[] = (
        await client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'kavach\\_%' ORDER BY table_name`, [name])
      ).rows.map((r: any) => r.table_name)
      for (const table of tables) {
        const columns: { name: string; type: string }[] = (
          await client.query(
            `SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
            [name, table],
          )
        ).rows
        const pk: string[] = (
          await client.query(
            `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
            [`"${name}"."${table}"`],
          )
        ).rows.map((r: any) => r.attname)
        const order = (pk.length ? pk : columns.map((c) => c.name)).map((c) => `"${c}"`).join(', ')
        const rows = (await client.query({ text: `SELECT * FROM "${name}"."${table}" ORDER BY ${order}`, rowMode: 'array' })).rows as (string | null)[][]
        out.set(
          table,
          rows.map((row) => {
            const key = JSON.stringify(pk.map((c) => row[columns.findIndex((col) => col.name === c)]))
            const cells = columns.map((c, i) => {
              let v: unknown = row[i]
              if (v !== null && (c.type === 'jsonb' || c.type === 'json')) v = JSON.stringify(JSON.parse(v as string))
              return `${c.name}=${JSON.stringify(v)}`
            })
            return [key, cells.join(' ')]
          }),
        )
      }
    } finally {
      await client.end()
    }
    return out
  }
  const u = new URL(requireUrl(provider))
  u.pathname = `/${name}`
  // Every value as the text the server sends (typeCast), so nothing is converted on the way.
  const conn = await mysql.createConnection({ uri: u.toString(), typeCast: (field: any) => field.string('utf8') })
  try {
    const [tableRows] = await conn.query(
      `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'kavach\\_%' ORDER BY TABLE_NAME`,
      [name],
    )
    for (const { t: table } of tableRows as any[]) {
      const [colRows] = await conn.query(
        `SELECT COLUMN_NAME AS name, COLUMN_KEY AS k FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
        [name, table],
      )
      const [pkRows] = await conn.query(
        `SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
        [name, table],
      )
      const columns = (colRows as any[]).map((c) => String(c.name))
      const pk = (pkRows as any[]).map((c) => String(c.name))
      const order = (pk.length ? pk : columns).map((c) => `\`${c}\``).join(', ')
      const [rows] = await conn.query({ sql: `SELECT * FROM \`${table}\` ORDER BY ${order}`, rowsAsArray: true })
      out.set(
        String(table),
        (rows as (string | null)[][]).map((row) => [
          JSON.stringify(pk.map((c) => row[columns.indexOf(c)])),
          columns.map((c, i) => `${c}=${JSON.stringify(row[i])}`).join(' '),
        ]),
      )
    }
  } finally {
    await conn.end()
  }
  return out
}
