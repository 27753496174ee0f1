// Child of fuzz.test.ts: runs the fuzz campaign (fuzz-calls.cjs) from call `from` on, one call
// at a time, against one adapter, and appends one JSON line per event to the results file,
// written with write(2) before and after each call, so that when this process dies the parent
// knows which call killed it (and starts a new child after it):
//   { t: 'start', i }   { t: 'done', i, outcome, ms, error?, violations }   { t: 'end', ... }
// Each call is checked here: it settles within CALL_BOUND_MS, a rejection is an Error naming the
// method (and for bad input the field), a rejected call changed no row (fingerprint of every
// table, read over a separate raw connection), bad input is rejected, valid input is not.
// argv[2]: JSON { url, provider, seed, perMethod, transactions, from, results, raw }.
'use strict'
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const util = require('node:util')
const root = path.resolve(__dirname, '../..')
const { createAdapter } = require(path.join(root, 'index.js'))
const binding = require(path.join(root, 'binding.js'))
const { campaign, GetterError, T0 } = require('./fuzz-calls.cjs')

const config = JSON.parse(process.argv[2])
const CALL_BOUND_MS = 10_000
const MAX_HANGS = 3
const out = fs.openSync(config.results, 'a')
const emit = (event) => fs.writeSync(out, `${JSON.stringify({ ...event, at: Date.now() })}\n`)

const methods = JSON.parse(binding.methodsJson())
const models = JSON.parse(binding.schemaJson())
const tables = models.map((m) => ({ table: m.table, columns: m.fields.map((f) => f.column) }))

process.on('uncaughtException', (error) => {
  emit({ t: 'uncaught', message: String(error && error.stack) })
  process.exit(70)
})
process.on('unhandledRejection', (error) => {
  emit({ t: 'uncaught', message: `unhandled rejection: ${String(error && error.stack)}` })
  process.exit(70)
})

// ---- a fingerprint of every kavach_* table, read without the adapter ---------------------------

async function openRaw() {
  if (config.provider === 'sqlite') {
    const Database = require(path.join(root, 'node_modules/better-sqlite3'))
    const db = new Database(config.raw.file, { readonly: true })
    const statements = tables.map(({ table }) => db.prepare(`SELECT * FROM "${table}"`).raw(true))
    return {
      async fingerprint() {
        const hash = crypto.createHash('sha1')
        for (const statement of statements) {
          const rows = statement.all()
          hash.update(`${rows.length}:`)
          for (const row of rows) hash.update(JSON.stringify(row))
          hash.update('|')
        }
        return hash.digest('hex')
      },
      close: async () => db.close(),
    }
  }
  if (config.provider === 'postgresql') {
    const pg = require(path.join(root, 'node_modules/pg'))
    const client = new pg.Client({ connectionString: config.raw.url, options: `-c search_path="${config.raw.schema}"` })
    await client.connect()
    const sql = `SELECT ${tables
      .map(({ table }, i) => `(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM "${table}" t) AS t${i}`)
      .join(', ')}`
    return {
      async fingerprint() {
        const { rows } = await client.query(sql)
        return crypto.createHash('sha1').update(JSON.stringify(rows[0])).digest('hex')
      },
      close: () => client.end(),
    }
  }
  const mysql = require(path.join(root, 'node_modules/mysql2/promise'))
  const conn = await mysql.createConnection(config.raw.url)
  const sql = `SELECT ${tables
    .map(({ table, columns }, i) => {
      // An order-independent sum of a hash per row: an ordered GROUP_CONCAT took ~45 ms here.
      const row = `MD5(CONCAT_WS(',', ${columns.map((c) => `COALESCE(\`${c}\`, '\\\\N')`).join(', ')}))`
      return `(SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CAST(CONV(SUBSTRING(${row}, 1, 15), 16, 10) AS UNSIGNED)), 0)) FROM \`${table}\`) AS t${i}`
    })
    .join(', ')}`
  return {
    async fingerprint() {
      const [rows] = await conn.query(sql)
      return crypto.createHash('sha1').update(JSON.stringify(rows[0])).digest('hex')
    },
    close: () => conn.end(),
  }
}

// ---- calls ----------------------------------------------------------------------------------

const describe = (value) => {
  try {
    return util.inspect(value, { depth: 4, maxStringLength: 48, maxArrayLength: 6, breakLength: Infinity, getters: false, showProxy: true }).slice(0, 500)
  } catch (error) {
    return `<not inspectable: ${error && error.message}>`
  }
}
const described = (call) =>
  call.kind === 'transaction' ? `transaction(${call.fnKind}, ${describe(call.options)})` : `${call.method}(${describe(call.args).replace(/^\[ ?|\s?\]$/g, '')})`
const errorInfo = (e) =>
  e instanceof Error ? { name: e.name, code: e.code, message: String(e.message).slice(0, 400) } : { notAnError: describe(e) }
/** Messages of an adapter that stopped serving although nobody closed it (issue 11, item 3). */
const DEAD = /closed with close\(\)|database thread stopped|call was abandoned/i

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Settles with { ok, value } / { ok: false, error } / { hang: true } within `ms`. */
async function settle(promise, ms) {
  let timer
  const bound = new Promise((resolve) => (timer = setTimeout(() => resolve({ hang: true }), ms)))
  const result = await Promise.race([promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error })), bound])
  clearTimeout(timer)
  return result
}

/** Calls `target[name](...args)`: a synchronous throw and a non-promise are outcomes too. */
function invoke(target, name, args) {
  let result
  try {
    result = target[name](...args)
  } catch (error) {
    return { sync: error }
  }
  if (!result || typeof result.then !== 'function') return { notPromise: describe(result) }
  return { promise: result }
}

const auditLog = (id) => ({ id, agentId: id, userId: 'fuzz-tx', action: 'tx', resource: 'r', result: 'allowed', durationMs: 1, timestamp: new Date(T0) })
class FnError extends Error {}

let db
function open() {
  db = createAdapter(config.url)
}

async function runOne(call, i) {
  const violations = []
  const v = (kind, detail) => violations.push(detail === undefined ? { kind } : { kind, detail })
  let invoked
  let fnRan = false
  let txId
  let fnError
  if (call.kind === 'transaction') {
    txId = `fuzz-tx-${config.seed}-${i}`
    const fn =
      call.fnKind === 'write'
        ? async (tx) => {
            fnRan = true
            await tx.createAuditLog(auditLog(txId))
            return txId
          }
        : call.fnKind === 'write-throw'
          ? async (tx) => {
              fnRan = true
              await tx.createAuditLog(auditLog(txId))
              throw new FnError('fn throws')
            }
          : call.fnKind === 'nested'
            ? async (tx) => {
                fnRan = true
                await tx.transaction(async (inner) => inner.createAuditLog(auditLog(txId)))
                return txId
              }
            : 'not a function'
    // Whatever escapes fn (its own FnError, or a call inside it that rejected, e.g. P2028 when
    // timeout 0 expires before the first write) is what transaction() must reject with.
    const watched =
      typeof fn === 'function'
        ? async (tx) => {
            try {
              return await fn(tx)
            } catch (escaped) {
              fnError = escaped
              throw escaped
            }
          }
        : fn
    invoked = invoke(db, 'transaction', call.options === undefined ? [watched] : [watched, call.options])
  } else {
    invoked = invoke(db, call.method, call.args)
  }
  const started = Date.now()
  let outcome
  let error
  if (invoked.sync !== undefined) {
    outcome = 'sync-throw'
    error = invoked.sync
    v('sync-throw', errorInfo(error))
  } else if (invoked.notPromise !== undefined) {
    outcome = 'not-a-promise'
    v('not-a-promise', invoked.notPromise)
  } else {
    const settled = await settle(invoked.promise, CALL_BOUND_MS)
    if (settled.hang) {
      outcome = 'hang'
      v('hang', `not settled after ${CALL_BOUND_MS} ms`)
    } else if (settled.ok) {
      outcome = 'resolved'
    } else {
      outcome = 'rejected'
      error = settled.error
    }
  }
  const ms = Date.now() - started
  const callersOwn = error instanceof GetterError || error instanceof FnError || (fnError !== undefined && error === fnError)
  if (outcome === 'rejected' || outcome === 'sync-throw') {
    if (!(error instanceof Error)) v('not-an-error', describe(error))
    else if (!callersOwn) {
      const message = String(error.message)
      if (!message.includes(`${call.method}(`) && !message.includes(`\`${call.method}\``)) v('method-not-named', errorInfo(error))
      if (error.name === 'PrismaClientValidationError') {
        if (call.valid) v('valid-input-rejected', errorInfo(error))
        else if (call.spots.length && !call.spots.some((s) => message.includes(s))) v('field-not-named', { expected: call.spots, error: errorInfo(error) })
      }
      if (DEAD.test(message)) v('adapter-wedged', errorInfo(error))
    }
    if (call.kind === 'transaction' && call.fnKind === 'write-throw' && !call.must && fnRan && error !== fnError) {
      v('fn-error-not-passed-through', errorInfo(error))
    }
  }
  if (outcome === 'resolved' && call.must) v('bad-input-accepted', call.damages ?? describe(call.options))
  if (call.kind === 'transaction') {
    if (call.must && fnRan && call.fnKind !== 'not-a-function') v('fn-ran-despite-bad-options', describe(call.options))
    if (outcome === 'resolved') {
      const rows = await db.queryAuditLogs({ agentId: txId }).catch((e) => e)
      if (!Array.isArray(rows) || rows.length !== 1) v('commit-lost', Array.isArray(rows) ? `${rows.length} rows` : errorInfo(rows))
    }
  }
  return { outcome, ms, error: error === undefined ? undefined : errorInfo(error), violations }
}

/** A round trip on the adapter: a create and a find that returns the row. */
async function healthy(bound = CALL_BOUND_MS) {
  const id = `fuzz-health-${Date.now()}-${Math.random()}`
  const user = { id, email: `${id}@example.com`, createdAt: new Date(T0), updatedAt: new Date(T0) }
  const made = await settle(Promise.resolve().then(() => db.createUser(user)), bound)
  if (!made.ok) return made.hang ? 'createUser hangs' : `createUser rejects: ${made.error && made.error.message}`
  const found = await settle(Promise.resolve().then(() => db.findUserById(id)), bound)
  if (!found.ok) return found.hang ? 'findUserById hangs' : `findUserById rejects: ${found.error && found.error.message}`
  if (!found.value || found.value.id !== id || found.value.email !== user.email) return `findUserById returned ${describe(found.value)}`
  return 'ok'
}

/** The fingerprint sees an insert, an update of one field and a delete (or the check means nothing). */
async function selftest(raw) {
  const start = await raw.fingerprint()
  const id = 'fuzz-selftest'
  await db.createUser({ id, email: `${id}@example.com`, createdAt: new Date(T0), updatedAt: new Date(T0) })
  const inserted = await raw.fingerprint()
  await db.updateUser(id, { name: 'changed' })
  const updated = await raw.fingerprint()
  await db.deleteUser(id)
  const deleted = await raw.fingerprint()
  if (inserted === start) return 'an insert left the fingerprint unchanged'
  if (updated === inserted) return 'an update left the fingerprint unchanged'
  if (deleted !== start) return 'the fingerprint changed although the table is as before'
  return 'ok'
}

async function main() {
  const calls = campaign({ methods, models, provider: config.provider, seed: config.seed, perMethod: config.perMethod, transactions: config.transactions })
  if (config.from === 0) emit({ t: 'plan', calls: calls.length, methods: [...new Set(calls.map((c) => c.method))].length })
  open()
  await db.connect()
  const raw = await openRaw()
  if (config.from === 0) emit({ t: 'selftest', result: await selftest(raw) })
  let before = await raw.fingerprint()
  let hangs = 0
  for (let i = config.from; i < calls.length; i++) {
    const call = calls[i]
    emit({ t: 'start', i, method: call.method, call: described(call) })
    const result = await runOne(call, i)
    const after = await raw.fingerprint()
    if ((result.outcome === 'rejected' || result.outcome === 'sync-throw') && after !== before) {
      result.violations.push({ kind: 'write-leaked', detail: result.error })
    }
    before = after
    const record = { t: 'done', i, method: call.method, outcome: result.outcome, ms: result.ms, error: result.error, violations: result.violations }
    if (result.violations.length) record.call = described(call)
    if (result.violations.length) record.damages = call.damages
    emit(record)
    if (result.outcome === 'hang' && ++hangs >= MAX_HANGS) {
      emit({ t: 'stopped', reason: `${hangs} calls hung`, at: i })
      break
    }
    // An adapter that stopped serving is replaced, so the rest of the campaign still means something.
    if (result.violations.some((x) => x.kind === 'adapter-wedged')) {
      const health = await healthy(3000)
      if (health !== 'ok') {
        emit({ t: 'reopened', at: i, health })
        await settle(Promise.resolve().then(() => db.close()), 3000)
        open()
      }
      // The round trip wrote a row (or the reopened adapter's late writes may land): start afresh.
      before = await raw.fingerprint()
    }
  }
  const health = await healthy()
  const closed = await settle(Promise.resolve().then(() => db.close()), CALL_BOUND_MS)
  await raw.close()
  emit({ t: 'end', health, close: closed.hang ? 'hangs' : closed.ok ? 'ok' : `rejects: ${closed.error && closed.error.message}` })
  process.exit(0)
}

main().catch((error) => {
  emit({ t: 'uncaught', message: `campaign failed: ${String(error && error.stack)}` })
  process.exit(71)
})
