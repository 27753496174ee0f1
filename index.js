'use strict'
// The adapter object users call. Everything below is plumbing: each camelCase method
// forwards its arguments to the native handle; `transaction` orchestrates begin / fn /
// commit-or-rollback so `fn`'s own return value and thrown error pass through untouched.
// Given a Prisma client instead of a URL, each call's statements run on that client
// (`createClientAdapter` below); errors are Prisma's own classes either way (`errors`).

const binding = loadBinding()
const observe = require('./observe.js')
const { tracingLikely, tracingRegistered } = observe

// The platform's `.node` comes from an optional dependency (kavach-native-<platform>) or,
// in a source checkout, from `npm run build`. When neither is there, say which package
// is missing instead of napi's generic message; the loader's own errors stay as `cause`.
function loadBinding() {
  try {
    return require('./binding.js')
  } catch (error) {
    if (!/Cannot find native binding|Failed to load native binding/.test(String(error && error.message))) throw error
    throw missingBindingError(error)
  }
}

// The package binding.js looks for: on Linux, musl or glibc decided as it does (napi-rs's
// loader: /usr/bin/ldd first, as Alpine's names musl, then the process report).
function platformPackageName() {
  const { platform, arch } = process
  let abi = ''
  if (platform === 'linux') {
    abi = isMusl() ? '-musl' : '-gnu'
  } else if (platform === 'win32') {
    abi = '-msvc'
  }
  return `kavach-native-${platform}-${arch}${abi}`
}

function isMusl() {
  try {
    return require('fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    if (!report || (report.header && report.header.glibcVersionRuntime)) return false
    return Array.isArray(report.sharedObjects) && report.sharedObjects.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
  }
}

function missingBindingError(cause) {
  const name = platformPackageName()
  const published = require('./package.json').optionalDependencies || {}
  const lines =
    name in published
      ? [
          `kavach-native: the native binary for ${process.platform}-${process.arch} is missing: the optional dependency "${name}" is not installed.`,
          `Package managers skip optional dependencies when installs run with --no-optional / --omit=optional, or when the lockfile was written on another platform (npm's optional-dependencies bug, https://github.com/npm/cli/issues/4828).`,
          `Fix: remove node_modules and the lockfile, then install again (or add "${name}" to your dependencies).`,
        ]
      : [
          `kavach-native: no prebuilt native binary for ${process.platform}-${process.arch} ("${name}" is not published).`,
          `Build it from source (Rust stable): clone kavach-native, run \`npm install && npm run build\`, then install that folder.`,
        ]
  const error = new Error(lines.join('\n'))
  error.code = 'KAVACH_NATIVE_BINDING_MISSING'
  error.cause = cause
  return error
}

const METHOD_NAMES = binding.methodNames()

// One function per model, in schemaJson() order, that builds a row from its field values:
// V8 creates an object literal from a ready-made shape, far faster than native code can
// define the same properties one by one. (No model has a field named __proto__.)
const ROW_FACTORIES = JSON.parse(binding.schemaJson()).map((model) => {
  const values = model.fields.map((_, i) => `v${i}`)
  const properties = model.fields.map((field, i) => `${JSON.stringify(field.name)}: v${i}`)
  return new Function(...values, `return { ${properties.join(', ')} }`)
})
const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_MAX_WAIT_MS = 2000

function bindMethods(handle, observer) {
  const adapter = {}
  METHOD_NAMES.forEach((name, index) => {
    const run = (args) => (log) => (log ? handle.callLogged(index, args, log) : handle.call(index, args))
    // Every failure is a rejected promise, as with an async method: even reading the
    // arguments (a getter or Proxy trap that throws) does not throw synchronously.
    adapter[name] = (...args) => {
      try {
        // Nobody listening and no tracer provider: straight to the native call.
        if (observer.active || tracingLikely()) return observer.call(name, run(args))
        return handle.call(index, args)
      } catch (error) {
        return Promise.reject(error)
      }
    }
  })
  return adapter
}

// The longest wait a JS timer holds; Prisma's transaction timers stop there too.
const MAX_TIMER_MS = 2 ** 31 - 1

function validationError(where, message) {
  return makeError(errorClasses(), ownClientVersion(), 'PrismaClientValidationError', undefined, `Invalid \`${where}\` invocation: ${message}`)
}

// Edit distance, to suggest the option a typo meant.
function distance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1)
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution))
    }
    previous = current
  }
  return previous[b.length]
}

// Options are checked by name, as `new PrismaClient({...})` checks its own: a typo such as
// `skipMigration` must not silently do the opposite of what was asked.
function checkOptionNames(where, options, known) {
  if (typeof options !== 'object' || Array.isArray(options)) throw validationError(where, 'options must be an object')
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    const nearest = known.map((name) => [distance(key, name), name]).sort((a, b) => a[0] - b[0])[0]
    const hint = nearest && nearest[0] <= Math.max(2, Math.floor(key.length / 3)) ? ` Did you mean \`${nearest[1]}\`?` : ''
    throw validationError(where, `unknown option \`${key}\`.${hint} Available options: ${known.join(', ')}.`)
  }
}

const ADAPTER_OPTIONS = ['skipMigrations', 'timestampFormat', 'replicas', 'log', 'slowQueryMs', 'logSecrets']
const TRANSACTION_OPTIONS = ['timeout', 'maxWait', 'isolationLevel']

function adapterOptions(options) {
  if (options === undefined || options === null) return undefined
  checkOptionNames('createAdapter()', options, ADAPTER_OPTIONS)
  const { skipMigrations, timestampFormat } = options
  if (skipMigrations !== undefined && typeof skipMigrations !== 'boolean') {
    throw validationError('createAdapter()', '`skipMigrations` must be a boolean')
  }
  if (timestampFormat !== undefined && typeof timestampFormat !== 'string') {
    throw validationError('createAdapter()', "`timestampFormat` must be one of 'iso8601', 'unixepoch-ms', 'unixepoch-s'")
  }
  const { replicas } = options
  if (replicas !== undefined && !(Array.isArray(replicas) && replicas.every((url) => typeof url === 'string'))) {
    throw validationError('createAdapter()', '`replicas` must be an array of postgresql:// URLs')
  }
  return { skipMigrations, timestampFormat, replicas }
}

const failCreate = (message) => {
  throw validationError('createAdapter()', message)
}

/** The adapter's observer: its `log`, `slowQueryMs` and `logSecrets` options, and `$on`. */
function makeObserver(options, target) {
  observe.lookForTracing()
  return new observe.Observer(options ?? {}, target, binding.StatementLog, failCreate)
}

/** `$on` and `metrics()` on an adapter. */
function addObservers(adapter, observer, snapshot) {
  observer.snapshot = snapshot
  adapter.$on = (level, listener) => observer.on(level, listener)
  adapter.metrics = (options) => observe.metrics(snapshot(), options, (message) => {
    throw validationError('metrics()', message)
  })
}

function transactionSettings(options) {
  if (options === undefined || options === null) {
    return { timeout: DEFAULT_TIMEOUT_MS, maxWait: DEFAULT_MAX_WAIT_MS }
  }
  checkOptionNames('transaction()', options, TRANSACTION_OPTIONS)
  const duration = (key, fallback) => {
    const value = options[key]
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !(value >= 0 && value <= MAX_TIMER_MS)) {
      throw validationError('transaction()', `\`${key}\` must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${describe(value)}`)
    }
    return value
  }
  const { isolationLevel } = options
  if (isolationLevel !== undefined && typeof isolationLevel !== 'string') throw validationError('transaction()', '`isolationLevel` must be a string')
  return { timeout: duration('timeout', DEFAULT_TIMEOUT_MS), maxWait: duration('maxWait', DEFAULT_MAX_WAIT_MS), isolationLevel }
}

function describe(value) {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${typeof value} ${String(value)}`
  return value === null ? 'null' : typeof value
}

async function runTransaction(native, observer, fn, options) {
  if (typeof fn !== 'function') throw validationError('transaction()', 'the first argument must be a function (tx) => Promise')
  const { timeout, maxWait, isolationLevel } = transactionSettings(options)
  const handle = native.transaction(timeout, maxWait, isolationLevel)
  // Observed (query events, or a span with the calls inside nesting under it), BEGIN,
  // COMMIT and ROLLBACK are timed as statements of their own.
  const body = async (record) => {
    const time = (sql, promise) => (record ? record(sql, promise) : promise)
    await time('BEGIN', handle.begin())
    const tx = bindMethods(handle, observer)
    // A nested transaction joins the one already open, as Prisma's does.
    tx.transaction = (inner) => Promise.resolve().then(() => inner(tx))
    let result
    try {
      result = await fn(tx)
    } catch (error) {
      await time('ROLLBACK', handle.rollback()).catch(() => {})
      throw error
    }
    await time('COMMIT', handle.commit())
    return result
  }
  if (observer.query || tracingRegistered()) return observer.transaction(body)
  return body(undefined)
}

// ---------------------------------------------------------------- errors

// Errors are instances of Prisma's own classes, so `e instanceof
// Prisma.PrismaClientKnownRequestError` holds: those of the app's @prisma/client when it
// resolves from the app (its working directory, or its main module), else the classes
// below, exported under the same names. Resolved on the first error.
const ERROR_NAMES = [
  'PrismaClientKnownRequestError',
  'PrismaClientUnknownRequestError',
  'PrismaClientValidationError',
  'PrismaClientInitializationError',
  'PrismaClientRustPanicError',
]

class PrismaClientKnownRequestError extends Error {
  constructor(message, { code, clientVersion, meta, batchRequestIdx } = {}) {
    super(message)
    this.name = 'PrismaClientKnownRequestError'
    this.code = code
    this.clientVersion = clientVersion
    this.meta = meta
    if (batchRequestIdx !== undefined) this.batchRequestIdx = batchRequestIdx
  }
  get [Symbol.toStringTag]() {
    return 'PrismaClientKnownRequestError'
  }
}

class PrismaClientUnknownRequestError extends Error {
  constructor(message, { clientVersion, batchRequestIdx } = {}) {
    super(message)
    this.name = 'PrismaClientUnknownRequestError'
    this.clientVersion = clientVersion
    if (batchRequestIdx !== undefined) this.batchRequestIdx = batchRequestIdx
  }
}

class PrismaClientValidationError extends Error {
  constructor(message, { clientVersion } = {}) {
    super(message)
    this.name = 'PrismaClientValidationError'
    this.clientVersion = clientVersion
  }
}

class PrismaClientInitializationError extends Error {
  constructor(message, clientVersion, errorCode) {
    super(message)
    this.name = 'PrismaClientInitializationError'
    this.clientVersion = clientVersion
    this.errorCode = errorCode
  }
}

class PrismaClientRustPanicError extends Error {
  constructor(message, clientVersion) {
    super(message)
    this.name = 'PrismaClientRustPanicError'
    this.clientVersion = clientVersion
  }
}

const OWN_ERRORS = {
  PrismaClientKnownRequestError,
  PrismaClientUnknownRequestError,
  PrismaClientValidationError,
  PrismaClientInitializationError,
  PrismaClientRustPanicError,
}

let resolvedErrors
/** The error classes errors are made of, and the clientVersion they carry. */
function errorClasses() {
  if (resolvedErrors) return resolvedErrors
  resolvedErrors = { classes: OWN_ERRORS, version: `kavach-native ${require('./package.json').version}` }
  const path = require('node:path')
  const bases = [process.cwd()]
  if (require.main && require.main.filename) bases.push(path.dirname(require.main.filename))
  for (const base of bases) {
    for (const runtime of ['@prisma/client/runtime/client', '@prisma/client/runtime/library']) {
      try {
        const found = require(require.resolve(runtime, { paths: [base] }))
        if (!ERROR_NAMES.every((name) => typeof found[name] === 'function')) continue
        let version
        try {
          version = require(require.resolve('@prisma/client/package.json', { paths: [base] })).version
        } catch {}
        resolvedErrors = { classes: found, version: version ?? resolvedErrors.version }
        return resolvedErrors
      } catch {}
    }
  }
  return resolvedErrors
}

function ownClientVersion() {
  return errorClasses().version
}

function makeError({ classes }, clientVersion, name, code, message, meta) {
  switch (name) {
    case 'PrismaClientKnownRequestError':
      return new classes.PrismaClientKnownRequestError(message, { code, clientVersion, meta: meta ?? {} })
    case 'PrismaClientValidationError':
      return new classes.PrismaClientValidationError(message, { clientVersion })
    case 'PrismaClientInitializationError': {
      const error = new classes.PrismaClientInitializationError(message, clientVersion, code)
      // Prisma's initialization errors name their code `errorCode`; `code` too, as before.
      if (code !== undefined && error.code === undefined) error.code = code
      return error
    }
    default:
      return new classes.PrismaClientUnknownRequestError(message, { clientVersion })
  }
}

// Made natively (src/js.rs) for every error an adapter rejects with.
function urlErrorFactory(name, code, message, meta) {
  const found = errorClasses()
  return makeError(found, found.version, name, code, message, meta)
}

// Through a client: an error the client threw for the failure (`cause`) gives its own
// class and clientVersion, and its `driverAdapterError` stays in `meta`.
function clientErrorFactory(client) {
  return (name, code, message, meta, cause) => {
    if (name === 'PrismaClientKnownRequestError' && isPrismaError(cause) && cause.name === name) {
      const driverAdapterError = cause.meta && cause.meta.driverAdapterError
      const fullMeta = driverAdapterError === undefined ? meta ?? {} : { ...meta, driverAdapterError }
      return new cause.constructor(message, { code, clientVersion: cause.clientVersion, meta: fullMeta })
    }
    return makeError(errorClasses(), clientVersionOf(client), name, code, message, meta)
  }
}

function isPrismaError(error) {
  return error instanceof Error && typeof error.clientVersion === 'string' && typeof error.constructor === 'function'
}

function clientVersionOf(client) {
  try {
    const version = client._clientVersion
    if (typeof version === 'string') return version
  } catch {}
  return ownClientVersion()
}

// ---------------------------------------------------------------- through a Prisma client

/** The next statement of a call through a client (made natively by ClientBridge). */
class Step {
  constructor(id, sql, params, rows, readBack, foldable) {
    this.id = id
    this.sql = sql
    this.params = params
    this.rows = rows
    // A write whose row is then read back (MySQL: no RETURNING): [sql, params] of the read.
    this.readBack = readBack
    // A read of at most one row by its keys, of method `foldable` (its index; -1: none), that
    // may share one statement with others of that method.
    this.foldable = foldable
  }
}
const makeStep = (id, sql, params, rows, readBack, foldable) => new Step(id, sql, params, rows, readBack, foldable)

// Most reads one fold answers (a UNION ALL of this many branches).
const MAX_FOLD = 64

/**
 * Point reads started in the same tick on one client go out as one statement (ClientBridge
 * `fold`), as Prisma folds concurrent `findUnique` calls into one `IN (...)`: a raw query per
 * read would cost a round trip (and, in a transaction, a turn on its one connection) each.
 */
class Folder {
  constructor(bridge, queryable) {
    this.bridge = bridge
    this.queryable = queryable
    this.waiting = []
    this.scheduled = false
  }

  add(step) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ step, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(() => this.flush())
      }
    })
  }

  flush() {
    this.scheduled = false
    const waiting = this.waiting
    this.waiting = []
    const byMethod = new Map()
    for (const entry of waiting) {
      const group = byMethod.get(entry.step.foldable)
      if (group) group.push(entry)
      else byMethod.set(entry.step.foldable, [entry])
    }
    for (const group of byMethod.values()) {
      for (let i = 0; i < group.length; i += MAX_FOLD) this.run(group.slice(i, i + MAX_FOLD))
    }
  }

  one({ step, resolve, reject }) {
    drive(this.bridge, this.queryable, step).then(resolve, reject)
  }

  async run(group) {
    if (group.length === 1) return this.one(group[0])
    const { bridge, queryable } = this
    let fold
    let results
    try {
      fold = bridge.fold(group.map((entry) => entry.step.id))
      results = bridge.resumeFold(fold.id, await queryable.$queryRawUnsafe(fold.sql, ...fold.params))
    } catch {
      // Whatever went wrong, each read runs on its own and meets its own outcome.
      if (fold) bridge.unfold(fold.id)
      for (const entry of group) this.one(entry)
      return
    }
    results.forEach((result, i) => {
      const entry = group[i]
      if (result instanceof Step) drive(bridge, queryable, result).then(entry.resolve, entry.reject)
      else if (result instanceof Error) entry.reject(result)
      else entry.resolve(result)
    })
  }
}

const CLIENT_PROVIDERS = ['sqlite', 'postgresql', 'mysql']

/** Is `value` a Prisma client (root, `$extends`-ed, or an interactive transaction's)? */
function isPrismaClient(value) {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  try {
    // Never enumerate a client: it is a Proxy, and Reflect.ownKeys on it throws.
    return typeof value.$queryRawUnsafe === 'function' && typeof value.$executeRawUnsafe === 'function' && typeof value._activeProvider === 'string'
  } catch {
    return false
  }
}

/** What a failed statement's error says about the database's refusal, if it is one. */
function databaseFailure(error) {
  if (!isPrismaError(error) || error.code !== 'P2010') return undefined
  const meta = error.meta || {}
  const cause = meta.driverAdapterError && meta.driverAdapterError.cause
  if (cause && typeof cause === 'object') {
    return { code: cause.originalCode, message: String(cause.originalMessage ?? cause.message ?? error.message), kind: cause.kind }
  }
  if (meta.code !== undefined) return { code: String(meta.code), message: String(meta.message ?? error.message), kind: undefined }
  return undefined
}

/** Runs a call's statements on `queryable` (a client or a transaction client) to its end. */
async function drive(bridge, queryable, step) {
  for (;;) {
    let next
    try {
      const result = step.rows ? await queryable.$queryRawUnsafe(step.sql, ...step.params) : await queryable.$executeRawUnsafe(step.sql, ...step.params)
      next = bridge.resume(step.id, result)
    } catch (error) {
      const failure = databaseFailure(error)
      if (failure === undefined) {
        // Not the database's refusal (the transaction closed or timed out, the client was
        // disconnected ...): Prisma's own error, as it is.
        bridge.abandon(step.id, errorType(error))
        throw error
      }
      next = bridge.fail(step.id, failure.code, failure.message, failure.kind, error)
    }
    if (next instanceof Step) {
      step = next
      continue
    }
    if (next instanceof Error) throw next
    return next
  }
}

/**
 * A write and its read-back (MySQL has no RETURNING) on a root client: the read sees exactly
 * that write only in a transaction, so both go in one batch `$transaction` (no interactive
 * transaction to open for them).
 */
async function writeAndReadBack(bridge, client, step) {
  const [sql, params] = step.readBack
  let results
  try {
    results = await client.$transaction([client.$executeRawUnsafe(step.sql, ...step.params), client.$queryRawUnsafe(sql, ...params)])
  } catch (error) {
    const failure = databaseFailure(error)
    if (failure === undefined) {
      bridge.abandon(step.id, errorType(error))
      throw error
    }
    return finish(bridge.fail(step.id, failure.code, failure.message, failure.kind, error))
  }
  let next = bridge.resume(step.id, results[0])
  if (next instanceof Step) next = bridge.resume(next.id, results[1])
  if (next instanceof Step) return drive(bridge, client, next)
  return finish(next)
}

function finish(result) {
  if (result instanceof Error) throw result
  return result
}

/** What metrics count a failure a Prisma client threw as: its code, else its class. */
function errorType(error) {
  return String((error && error.code) || (error && error.name) || 'Error')
}

function bindClient(bridge, client, inTransaction, observer) {
  const adapter = {}
  const folder = new Folder(bridge, client)
  METHOD_NAMES.forEach((name, index) => {
    // With a statement log the call is never folded: its statements are its own.
    const run = async (args, log) => {
      const step = log ? bridge.startLogged(index, args, log) : bridge.start(index, args)
      if (!(step instanceof Step)) {
        if (step instanceof Error) throw step
        return step
      }
      if (step.foldable >= 0) return folder.add(step)
      if (step.readBack === null || inTransaction) return drive(bridge, client, step)
      return writeAndReadBack(bridge, client, step)
    }
    adapter[name] = (...args) => {
      try {
        if (observer.active || tracingLikely()) return observer.call(name, (log) => run(args, log))
        return run(args, undefined)
      } catch (error) {
        return Promise.reject(error)
      }
    }
  })
  return adapter
}

function clientTransactionOptions(options) {
  if (options === undefined || options === null) return undefined
  transactionSettings(options)
  const settings = {}
  for (const key of TRANSACTION_OPTIONS) if (options[key] !== undefined) settings[key] = options[key]
  return settings
}

function createClientAdapter(client, options) {
  const provider = client._activeProvider
  if (!CLIENT_PROVIDERS.includes(provider)) {
    throw validationError('createAdapter()', `the Prisma client's provider is '${provider}'; kavach-native runs on ${CLIENT_PROVIDERS.join(', ')}`)
  }
  if (options !== undefined && options !== null) checkOptionNames('createAdapter()', options, ADAPTER_OPTIONS)
  const { timestampFormat } = options ?? {}
  if (timestampFormat !== undefined && typeof timestampFormat !== 'string') {
    throw validationError('createAdapter()', "`timestampFormat` must be one of 'iso8601', 'unixepoch-ms', 'unixepoch-s'")
  }
  let bridge
  try {
    bridge = new binding.ClientBridge(provider, { timestampFormat }, ROW_FACTORIES, clientErrorFactory(client), makeStep)
  } catch (error) {
    if (error && error.code === 'InvalidArg') throw makeError(errorClasses(), clientVersionOf(client), 'PrismaClientValidationError', undefined, error.message)
    throw error
  }
  // The client's own pool is the app's: spans name the provider only.
  const observer = makeObserver(options, { provider, namespace: '' })
  // An interactive transaction's client has no $connect: calls on it run in that
  // transaction, and `transaction(fn)` joins it, as a nested Prisma transaction would.
  const inTransaction = typeof client.$connect !== 'function'
  const adapter = bindClient(bridge, client, inTransaction, observer)
  if (inTransaction) {
    adapter.transaction = async (fn, txOptions) => {
      if (typeof fn !== 'function') throw validationError('transaction()', 'the first argument must be a function (tx) => Promise')
      if (txOptions !== undefined && txOptions !== null) transactionSettings(txOptions)
      return fn(adapter)
    }
  } else {
    adapter.transaction = async (fn, txOptions) => {
      if (typeof fn !== 'function') throw validationError('transaction()', 'the first argument must be a function (tx) => Promise')
      const settings = clientTransactionOptions(txOptions)
      const body = () =>
        client.$transaction((tx) => {
          const txAdapter = bindClient(bridge, tx, true, observer)
          txAdapter.transaction = (inner) => Promise.resolve().then(() => inner(txAdapter))
          return fn(txAdapter)
        }, settings)
      // BEGIN and COMMIT are the client's own (its query events and spans show them).
      if (tracingRegistered()) return observer.transaction(body)
      return body()
    }
  }
  addObservers(adapter, observer, () => bridge.metrics())
  // The app's client is the app's: never connected, disconnected or migrated from here.
  adapter.connect = async () => []
  adapter.close = async () => {}
  // Through a client, the client decides where statements go.
  adapter.$primary = () => adapter
  return adapter
}

// ---------------------------------------------------------------- createAdapter

/**
 * Creates an adapter for a database URL, or on the app's own Prisma client (a
 * PrismaClient, `$extends`-ed or not, or an interactive transaction's client).
 * Synchronous: connecting and creating missing tables happen on first use (never
 * through a client). See index.d.ts for the accepted URL forms and options.
 */
function createAdapter(url, options) {
  if (isPrismaClient(url)) return createClientAdapter(url, options)
  if (typeof url !== 'string') {
    const what = url === null ? 'null' : typeof url === 'object' ? 'an object that is not a Prisma client' : typeof url
    throw new TypeError(`createAdapter: the database URL must be a string (or give a Prisma client), got ${what}`)
  }
  let native
  try {
    native = new binding.NativeAdapter(url, adapterOptions(options), ROW_FACTORIES, urlErrorFactory)
  } catch (error) {
    // The URL and its parameters are checked natively: the same error class as options.
    if (error && error.code === 'InvalidArg') throw makeError(errorClasses(), ownClientVersion(), 'PrismaClientValidationError', undefined, error.message)
    throw error
  }
  const observer = makeObserver(options, native.target())
  const adapter = bindMethods(native, observer)
  adapter.transaction = (fn, txOptions) => runTransaction(native, observer, fn, txOptions)
  adapter.connect = () => native.connect()
  adapter.close = () => native.close()
  // Every call on the primary (with `replicas`), as @prisma/extension-read-replicas' $primary().
  const primary = bindMethods(native.primary(), observer)
  primary.transaction = adapter.transaction
  adapter.$primary = () => primary
  addObservers(adapter, observer, () => native.metrics())
  return adapter
}

module.exports.createAdapter = createAdapter
module.exports.schemaPrisma = binding.schemaPrisma
module.exports.schemaDdl = binding.schemaDdl
module.exports.methodNames = binding.methodNames
// Prisma's error classes: the app's @prisma/client's when it resolves, else kavach-native's.
for (const name of ERROR_NAMES) {
  Object.defineProperty(module.exports, name, { enumerable: true, get: () => errorClasses().classes[name] })
}
