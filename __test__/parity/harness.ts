// Shared plumbing for the parity tests: open the native adapter and the Prisma 7 oracle
// (@kavachos/prisma over PrismaClient + @prisma/adapter-better-sqlite3) on database files,
// call a method on either and capture the outcome, put outcomes in a canonical form that
// can be compared exactly, and dump every kavach_* table with the storage class of each value.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { inspect } from 'node:util'
import { createPrismaAdapter } from '@kavachos/prisma'
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { clientDir } from './prisma-client.mjs'

const require = createRequire(import.meta.url)
// Loaded with require so that vitest does not transform them.
const native = require('../../index.js')
const Database = require('better-sqlite3')

export type Adapter = Record<string, (...args: any[]) => Promise<any>> & {
  transaction: (fn: (tx: Adapter) => Promise<any>) => Promise<any>
}

/** The methods of the TS adapter (the native adapter has these first, then more tables'). */
export const methodNames: string[] = Object.keys(createPrismaAdapter({} as any)).filter((m) => m !== 'transaction')
if (methodNames.some((m, i) => native.methodNames()[i] !== m)) {
  throw new Error('the native adapter must offer the TS adapter\'s methods first, in its order')
}

/**
 * A fresh directory for database files: in /dev/shm when there is one, since with fsync on
 * a real disk the Prisma side takes several times longer (durability is not under test).
 * PARITY_TMPDIR overrides.
 */
export function tempDir(label: string): string {
  let base = process.env.PARITY_TMPDIR ?? os.tmpdir()
  if (!process.env.PARITY_TMPDIR) {
    try {
      fs.accessSync('/dev/shm', fs.constants.W_OK)
      base = '/dev/shm'
    } catch {}
  }
  return fs.mkdtempSync(path.join(base, `kavach-parity-${label}-`))
}

/** Creates every kavach_* table in `file` with the native adapter's own DDL. */
export function createTables(file: string) {
  const db = new Database(file)
  try {
    for (const statement of native.schemaDdl('sqlite') as string[]) db.exec(statement)
  } finally {
    db.close()
  }
}

export function openNative(file: string, options?: Record<string, unknown>): { adapter: Adapter; close: () => Promise<void> } {
  const adapter = native.createAdapter(`file:${file}`, options)
  return { adapter, close: async () => adapter.close() }
}

/**
 * Bridge mode (KAVACH_TEST_BRIDGE=1): the native adapter on its own Prisma 7 client over
 * `file` (`createAdapter(prisma)`), opened exactly as the oracle's; the tables must exist.
 */
export const BRIDGE = process.env.KAVACH_TEST_BRIDGE === '1'

export function openNativeBridge(file: string): { adapter: Adapter; prisma: any; close: () => Promise<void> } {
  PrismaClientClass ??= require(clientDir).PrismaClient
  const prisma = new PrismaClientClass({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) })
  const adapter = native.createAdapter(prisma)
  return { adapter, prisma, close: () => prisma.$disconnect() }
}

let PrismaClientClass: any
export function openPrisma(
  file: string,
  driverOptions: Record<string, unknown> = {},
): { adapter: Adapter; prisma: any; close: () => Promise<void> } {
  PrismaClientClass ??= require(clientDir).PrismaClient
  const prisma = new PrismaClientClass({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }, driverOptions) })
  const adapter = createPrismaAdapter(prisma) as unknown as Adapter
  return { adapter, prisma, close: () => prisma.$disconnect() }
}

// ---------------------------------------------------------------------------------------
// Outcomes

export type Outcome =
  | { ok: true; value: unknown }
  | { ok: false; error: unknown; sync?: boolean }

/**
 * Calls `adapter[method](...args)` with its own deep copy of `args`, so that neither side can
 * see what the other did to its input. A synchronous throw is recorded as such (Prisma's
 * methods are async functions: they never throw synchronously).
 */
export async function invoke(adapter: Adapter, method: string, args: unknown[]): Promise<Outcome> {
  const own = args.map((a) => (typeof a === 'function' ? a : structuredClone(a)))
  let promise: Promise<unknown>
  try {
    promise = adapter[method](...own)
  } catch (error) {
    return { ok: false, error, sync: true }
  }
  try {
    return { ok: true, value: await promise }
  } catch (error) {
    return { ok: false, error }
  }
}

/**
 * A string that is equal for two values exactly when a caller could not tell them apart:
 * key order, Date instants (and invalid Dates), -0, undefined vs missing keys, prototypes
 * of plain objects and arrays, bigint vs number.
 */
export function canon(value: unknown): string {
  const walk = (v: unknown): unknown => {
    if (v === undefined) return { $undefined: true }
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v
    if (typeof v === 'number') {
      if (Object.is(v, -0)) return { $number: '-0' }
      if (!Number.isFinite(v)) return { $number: String(v) }
      return v
    }
    if (typeof v === 'bigint') return { $bigint: v.toString() }
    if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString() }
    if (Array.isArray(v)) return v.map(walk)
    if (typeof v === 'object') {
      const proto = Object.getPrototypeOf(v)
      const out: Record<string, unknown> = {}
      if (proto !== Object.prototype && proto !== null) out.$proto = proto?.constructor?.name ?? 'unknown'
      for (const key of Object.keys(v as object)) out[key] = walk((v as any)[key])
      return out
    }
    return { $other: typeof v, text: String(v) }
  }
  return JSON.stringify(walk(value))
}

/** What is compared of an outcome: the value, or for an error its `code` (absent for validation errors). */
export function outcomeKey(outcome: Outcome): string {
  if (outcome.ok) return `ok ${canon(outcome.value)}`
  const error = outcome.error as any
  const isObject = typeof error === 'object' && error !== null
  const code = isObject ? error.code : undefined
  return `error${outcome.sync ? ' (thrown synchronously)' : ''} code=${code === undefined ? 'none' : String(code)}`
}

export function describeOutcome(outcome: Outcome): string {
  if (outcome.ok) return `resolved ${inspect(outcome.value, { depth: null, breakLength: 160 })}`
  const error = outcome.error as any
  if (!(error instanceof Error)) return `rejected with non-Error ${inspect(error)}`
  const message = String(error.message).trim().split('\n').slice(-3).join(' | ')
  return `rejected ${error.name}${error.code ? ` ${error.code}` : ''}${outcome.sync ? ' (sync throw)' : ''}: ${message}`
}

export function show(value: unknown): string {
  return inspect(value, { depth: null, breakLength: 160 })
}

// ---------------------------------------------------------------------------------------
// Stored rows

/** Per table, each row as [primary-key text, canonical row text], in primary-key order. */
export type TableDump = Map<string, [string, string][]>

/**
 * Every kavach_* table of `file`: one canonical string per row, in primary-key order,
 * holding rowid, each column's value and its storage class (typeof()). Integers are read
 * as bigint and blobs as hex so nothing is lost.
 */
export function dumpTables(file: string): TableDump {
  const db = new Database(file, { readonly: true })
  try {
    const tables = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'kavach\\_%' ESCAPE '\\' ORDER BY name`)
      .all()
      .map((r: any) => r.name as string)
    const out: TableDump = new Map()
    for (const table of tables) {
      const columns = db.prepare(`PRAGMA table_info("${table}")`).all() as { name: string; pk: number }[]
      const pk = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => `"${c.name}"`)
      const select = columns.map((c) => `"${c.name}", typeof("${c.name}")`).join(', ')
      const rows = db
        .prepare(`SELECT ${pk.length ? pk.join(', ') : 'rowid'}, rowid, ${select} FROM "${table}" ORDER BY ${pk.length ? pk.join(', ') : 'rowid'}`)
        .raw(true)
        .safeIntegers(true)
        .all() as unknown[][]
      const cell = (v: unknown) =>
        typeof v === 'bigint' ? `int:${v}` : Buffer.isBuffer(v) ? `blob:${v.toString('hex')}` : typeof v === 'number' ? `real:${Object.is(v, -0) ? '-0' : v}` : v
      const keyWidth = pk.length || 1
      out.set(
        table,
        rows.map((row) => [
          JSON.stringify(row.slice(0, keyWidth).map(cell)),
          `rowid ${row[keyWidth]} ` +
            columns.map((c, i) => `${c.name}=${JSON.stringify(cell(row[keyWidth + 1 + 2 * i]))}/${row[keyWidth + 2 + 2 * i]}`).join(' '),
        ]),
      )
    }
    return out
  } finally {
    db.close()
  }
}

/** Differences between two dumps, row by primary key, as readable lines (empty when identical). */
export function diffDumps(a: TableDump, b: TableDump, labels = ['native', 'prisma'], max = 30): string[] {
  const lines: string[] = []
  const tables = [...new Set([...a.keys(), ...b.keys()])].sort()
  for (const table of tables) {
    const ra = a.get(table)
    const rb = b.get(table)
    if (!ra || !rb) {
      lines.push(`${table}: only in ${ra ? labels[0] : labels[1]}`)
      continue
    }
    const ma = new Map(ra)
    const mb = new Map(rb)
    for (const key of [...new Set([...ma.keys(), ...mb.keys()])]) {
      if (lines.length >= max) {
        lines.push('... (more differences not shown)')
        return lines
      }
      const x = ma.get(key)
      const y = mb.get(key)
      if (x !== y) lines.push(`${table} ${key}:\n    ${labels[0]}: ${x ?? '(no row)'}\n    ${labels[1]}: ${y ?? '(no row)'}`)
    }
  }
  return lines
}

export function removeDir(dir: string) {
  fs.rmSync(dir, { recursive: true, force: true })
}
