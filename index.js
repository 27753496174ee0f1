'use strict'
// The adapter object users call. Everything below is plumbing: each camelCase method
// forwards its arguments to the native handle; `transaction` orchestrates begin / fn /
// commit-or-rollback so `fn`'s own return value and thrown error pass through untouched.

const binding = loadBinding()

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

function bindMethods(handle) {
  const adapter = {}
  METHOD_NAMES.forEach((name, index) => {
    // Every failure is a rejected promise, as with an async method: even reading the
    // arguments (a getter or Proxy trap that throws) does not throw synchronously.
    adapter[name] = (...args) => {
      try {
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
  const error = new Error(`Invalid \`${where}\` invocation: ${message}`)
  error.name = 'PrismaClientValidationError'
  return error
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

const ADAPTER_OPTIONS = ['skipMigrations', 'timestampFormat']
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
  return options
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

async function runTransaction(native, fn, options) {
  if (typeof fn !== 'function') throw validationError('transaction()', 'the first argument must be a function (tx) => Promise')
  const { timeout, maxWait, isolationLevel } = transactionSettings(options)
  const handle = native.transaction(timeout, maxWait, isolationLevel)
  await handle.begin()
  const tx = bindMethods(handle)
  // A nested transaction joins the one already open, as Prisma's does.
  tx.transaction = (inner) => Promise.resolve().then(() => inner(tx))
  let result
  try {
    result = await fn(tx)
  } catch (error) {
    await handle.rollback().catch(() => {})
    throw error
  }
  await handle.commit()
  return result
}

/**
 * Creates an adapter for a database URL. Synchronous: connecting and creating missing
 * tables happen on first use. See index.d.ts for the accepted URL forms and options.
 */
function createAdapter(url, options) {
  if (typeof url !== 'string') {
    throw new TypeError(`createAdapter: the database URL must be a string, got ${url === null ? 'null' : typeof url}`)
  }
  let native
  try {
    native = new binding.NativeAdapter(url, adapterOptions(options), ROW_FACTORIES)
  } catch (error) {
    // The URL and its parameters are checked natively: the same error class as options.
    if (error && error.code === 'InvalidArg') error.name = 'PrismaClientValidationError'
    throw error
  }
  const adapter = bindMethods(native)
  adapter.transaction = (fn, txOptions) => runTransaction(native, fn, txOptions)
  adapter.connect = () => native.connect()
  adapter.close = () => native.close()
  return adapter
}

module.exports.createAdapter = createAdapter
module.exports.schemaPrisma = binding.schemaPrisma
module.exports.schemaDdl = binding.schemaDdl
module.exports.methodNames = binding.methodNames
