'use strict'
// What an app sees of its adapter besides results: Prisma-style logs and events
// (`log` option, `$on`), OpenTelemetry spans when the app registered a tracer provider, and
// `metrics()`. A call nobody observes never comes here: index.js checks `observer.active` and
// the OpenTelemetry global once per call and otherwise calls the native handle directly.
// Statement texts, bound values (secret fields' redacted natively) and timings come from a
// native StatementLog the observed call fills.

const LEVELS = ['query', 'info', 'warn', 'error']
const EMITS = ['stdout', 'event']
// Where @opentelemetry/api 1.x keeps its registered globals (tracer provider, context manager).
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1')
const NO_STATEMENTS = []

/** Is OpenTelemetry's tracer provider registered (without loading anything)? */
function tracingRegistered() {
  const registered = globalThis[OTEL_GLOBAL]
  return registered !== undefined && registered.trace !== undefined
}

// Looking a key up on the global object costs ~60-100 ns (a miss walks its prototype chain),
// ~1% of a call: the registration is looked for on the first call after an adapter is
// created (`lookForTracing`) and on every 256th call.
const RECHECK_EVERY = 256
let untilRecheck = 1
let tracingSeen = false
/** The next call looks for a tracer provider (an adapter was created: the app is set up). */
function lookForTracing() {
  untilRecheck = 1
}

/** Was a tracer provider registered when last looked (at most 255 calls ago)? */
function tracingLikely() {
  if (--untilRecheck > 0) return tracingSeen
  untilRecheck = RECHECK_EVERY
  tracingSeen = tracingRegistered()
  return tracingSeen
}

let otelApi
/** The app's @opentelemetry/api (a peer dependency), loaded on the first traced call. */
function loadOtelApi() {
  if (otelApi !== undefined) return otelApi
  otelApi = null
  const path = require('node:path')
  const bases = [__dirname, process.cwd()]
  if (require.main && require.main.filename) bases.push(path.dirname(require.main.filename))
  for (const base of bases) {
    try {
      otelApi = require(require.resolve('@opentelemetry/api', { paths: [base] }))
      break
    } catch {}
  }
  return otelApi
}

/** Prisma's `log` option: levels, or `{ emit, level }`; each level goes to stdout, to `$on`, or both. */
function parseLog(log, fail) {
  const routes = { query: 0, info: 0, warn: 0, error: 0 }
  const STDOUT = 1
  const EVENT = 2
  if (log === undefined || log === null) return { routes, STDOUT, EVENT }
  if (!Array.isArray(log)) fail("`log` must be an array of levels ('query', 'info', 'warn', 'error') or { emit, level } objects")
  for (const entry of log) {
    const level = typeof entry === 'string' ? entry : entry && entry.level
    const emit = typeof entry === 'string' ? 'stdout' : entry && entry.emit
    if (!LEVELS.includes(level)) fail(`\`log\`: unknown level ${JSON.stringify(level)}; use one of ${LEVELS.join(', ')}`)
    if (!EMITS.includes(emit)) fail(`\`log\`: unknown emit ${JSON.stringify(emit)}; use 'stdout' or 'event'`)
    routes[level] |= emit === 'stdout' ? STDOUT : EVENT
  }
  return { routes, STDOUT, EVENT }
}

const TARGET = 'kavach-native'
// Where each level prints with `emit: 'stdout'`, as Prisma's do.
const CONSOLE = {
  query: (text) => console.log(text),
  info: (text) => console.info(text),
  warn: (text) => console.warn(text),
  error: (text) => console.error(text),
}

function firstWord(sql) {
  const match = /^\s*([A-Za-z]+)/.exec(sql)
  return match ? match[1].toUpperCase() : 'SQL'
}

class Observer {
  /**
   * `options`: the adapter's `log`, `slowQueryMs`, `logSecrets`; `target`: { provider,
   * namespace, address, port } (never a password); `StatementLog`: the native class.
   */
  constructor(options, target, StatementLog, fail) {
    const { routes, STDOUT, EVENT } = parseLog(options.log, fail)
    const { slowQueryMs, logSecrets } = options
    if (slowQueryMs !== undefined && !(typeof slowQueryMs === 'number' && slowQueryMs >= 0)) fail('`slowQueryMs` must be a number of milliseconds, 0 or more')
    if (logSecrets !== undefined && typeof logSecrets !== 'boolean') fail('`logSecrets` must be a boolean')
    this.routes = routes
    this.STDOUT = STDOUT
    this.EVENT = EVENT
    this.listeners = { query: [], info: [], warn: [], error: [] }
    this.slowQueryMs = slowQueryMs
    this.revealSecrets = logSecrets === true
    this.target = target
    this.StatementLog = StatementLog
    this.attributes = undefined
    // The first call after connecting reports what it connected to ('info').
    this.connectedUnreported = true
    /** The native metrics snapshot (JSON text), for the pool size that 'info' names. */
    this.snapshot = undefined
    this.update()
  }

  /** Recomputes what a call must do for its observers (a listener was added). */
  update() {
    // As Prisma's: a level the `log` option names goes to stdout if asked, and to every
    // `$on` listener of that level either way.
    const wants = (level) => (this.routes[level] & this.STDOUT) !== 0 || (this.routes[level] !== 0 && this.listeners[level].length > 0)
    this.query = wants('query')
    this.warn = wants('warn')
    this.error = wants('error')
    this.info = wants('info')
    this.slow = this.slowQueryMs !== undefined && this.warn
    /** Does any call need observing, tracing aside? The one flag index.js checks. */
    this.active = this.query || this.error || this.slow || (this.info && this.connectedUnreported)
  }

  /** 'info': what the adapter runs on, once its first call is done (it connects lazily). */
  reportConnected() {
    this.connectedUnreported = false
    this.update()
    const { provider, namespace, address, port } = this.target
    let pool = ''
    try {
      const gauges = this.snapshot ? JSON.parse(this.snapshot()).gauges : []
      const max = gauges.find((g) => g.key === 'kavach_pool_connections_max')
      const readers = gauges.find((g) => g.key === 'kavach_sqlite_readers')
      if (max) pool = `, a pool of at most ${max.value} connections`
      else if (readers) pool = `, a writer thread and ${readers.value} reader threads`
    } catch {}
    const where = address ? ` at ${address}${port ? `:${port}` : ''}` : ''
    const message = `kavach-native ${require('./package.json').version} on ${provider}${namespace ? ` database ${namespace}` : ''}${where}${pool}`
    this.emit('info', { timestamp: new Date(), message, target: TARGET }, message)
  }

  /** Prisma's `$on(level, listener)`: events of a level the `log` option emits as 'event'. */
  on(level, listener) {
    if (!LEVELS.includes(level)) throw new TypeError(`$on: unknown event ${JSON.stringify(level)}; use one of ${LEVELS.join(', ')}`)
    if (typeof listener !== 'function') throw new TypeError('$on: the listener must be a function')
    this.listeners[level].push(listener)
    this.update()
  }

  emit(level, event, text) {
    const route = this.routes[level]
    if (route & this.STDOUT) CONSOLE[level](`kavach:${level} ${text}`)
    if (route !== 0) {
      for (const listener of this.listeners[level]) {
        try {
          listener(event)
        } catch (error) {
          // A listener's failure is the app's, not the call's: reported, never rejected with.
          process.emitWarning(`kavach-native: a '${level}' listener threw: ${error && error.message}`)
        }
      }
    }
  }

  /** The OpenTelemetry API and tracer when the app registered a tracer provider, else undefined. */
  tracing() {
    if (!tracingRegistered()) return undefined
    const api = loadOtelApi()
    if (!api) return undefined
    return { api, tracer: api.trace.getTracer('kavach-native', require('./package.json').version) }
  }

  baseAttributes() {
    if (this.attributes) return this.attributes
    const { provider, namespace, address, port } = this.target
    const attributes = { 'db.system': provider, 'db.system.name': provider }
    if (namespace) attributes['db.namespace'] = namespace
    if (address !== undefined && address !== null) attributes['server.address'] = address
    if (port !== undefined && port !== null) attributes['server.port'] = port
    this.attributes = attributes
    return attributes
  }

  /**
   * Runs one adapter call `name` observed: `run(log)` starts it (recording its statements in
   * `log` when given) and returns its promise. Inside a span when tracing, so that what the
   * call runs (a Prisma client's own spans) nests under it.
   */
  call(name, run) {
    const tracing = this.tracing()
    const wantsStatements = this.query || this.slow || tracing !== undefined
    const log = wantsStatements ? new this.StatementLog(this.revealSecrets) : undefined
    const started = performance.now()
    let span
    let promise
    try {
      if (tracing) {
        const { api, tracer } = tracing
        span = tracer.startSpan(name, { kind: api.SpanKind.INTERNAL, attributes: { ...this.baseAttributes(), 'kavach.method': name } }, api.context.active())
        promise = api.context.with(api.trace.setSpan(api.context.active(), span), () => run(log))
      } else {
        promise = run(log)
      }
    } catch (error) {
      promise = Promise.reject(error)
    }
    return promise.then(
      (result) => {
        this.finish(name, started, log, span, tracing, undefined)
        return result
      },
      (error) => {
        this.finish(name, started, log, span, tracing, error)
        throw error
      },
    )
  }

  finish(name, started, log, span, tracing, error) {
    const duration = performance.now() - started
    const statements = log ? log.take() : NO_STATEMENTS
    if (this.query) {
      for (const s of statements) this.emitQuery(s.sql, s.params, s.started, s.duration)
    }
    if (span) this.endSpan(span, tracing, statements, error)
    if (this.info && this.connectedUnreported) this.reportConnected()
    if (error !== undefined && this.error) {
      this.emit('error', { timestamp: new Date(), message: String(error && error.message), target: name }, String(error && error.message))
    }
    if (this.slow && duration >= this.slowQueryMs) {
      const slowest = statements.reduce((a, b) => (b.duration > a.duration ? b : a), statements[0])
      const query = slowest ? slowest.sql : ''
      const message = `Slow call ${name}: ${duration.toFixed(1)} ms (slowQueryMs ${this.slowQueryMs})${query ? `; slowest statement (${slowest.duration.toFixed(1)} ms): ${query}` : ''}`
      this.emit(
        'warn',
        { timestamp: new Date(), message, target: name, method: name, duration, query, statements: statements.map((s) => ({ query: s.sql, params: s.params, duration: s.duration })) },
        message,
      )
    }
  }

  emitQuery(query, params, startedMs, duration) {
    // Prisma 7's shape and key order: { timestamp, duration, query, params, target }.
    this.emit('query', { timestamp: new Date(startedMs), duration, query, params, target: TARGET }, query)
  }

  endSpan(span, { api, tracer }, statements, error) {
    const base = this.baseAttributes()
    let returned = 0
    for (const s of statements) {
      const operation = firstWord(s.sql)
      const attributes = { ...base, 'db.query.text': s.sql, 'db.operation.name': operation }
      if (s.table) attributes['db.collection.name'] = s.table
      if (s.rows !== undefined) {
        if (s.returnsRows) {
          attributes['db.response.returned_rows'] = s.rows
          returned += s.rows
        } else {
          attributes['kavach.affected_rows'] = s.rows
        }
      }
      if (s.error !== undefined) attributes['error.type'] = s.error
      const child = tracer.startSpan(s.table ? `${operation} ${s.table}` : operation, { kind: api.SpanKind.CLIENT, attributes, startTime: s.started }, api.trace.setSpan(api.context.active(), span))
      if (s.error !== undefined) child.setStatus({ code: api.SpanStatusCode.ERROR, message: s.error })
      child.end(s.started + s.duration)
    }
    span.setAttribute('db.response.returned_rows', returned)
    if (error !== undefined) {
      span.setAttribute('error.type', String((error && error.code) || (error && error.name) || 'Error'))
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: String(error && error.message) })
    }
    span.end()
  }

  /**
   * Runs `body(record)` as a transaction: a span around it when tracing (the calls inside
   * nest under it), and BEGIN / COMMIT / ROLLBACK as query events and child spans. `record(sql,
   * promise)` times one such statement.
   */
  async transaction(body) {
    const tracing = this.tracing()
    if (!tracing && !this.query) return body(undefined)
    let span
    let context
    if (tracing) {
      const { api, tracer } = tracing
      span = tracer.startSpan('transaction', { kind: api.SpanKind.INTERNAL, attributes: { ...this.baseAttributes() } }, api.context.active())
      context = api.trace.setSpan(api.context.active(), span)
    }
    const record = async (sql, promise) => {
      const wall = Date.now()
      const started = performance.now()
      let failed
      try {
        return await promise
      } catch (error) {
        failed = error
        throw error
      } finally {
        const duration = performance.now() - started
        if (this.query) this.emitQuery(sql, '[]', wall, duration)
        if (tracing) {
          const { api, tracer } = tracing
          const child = tracer.startSpan(sql, { kind: api.SpanKind.CLIENT, attributes: { ...this.baseAttributes(), 'db.query.text': sql, 'db.operation.name': sql } , startTime: wall }, context)
          if (failed !== undefined) {
            child.setAttribute('error.type', String((failed && failed.code) || (failed && failed.name) || 'Error'))
            child.setStatus({ code: api.SpanStatusCode.ERROR, message: String(failed && failed.message) })
          }
          child.end(wall + duration)
        }
      }
    }
    if (!tracing) return body(record)
    const { api } = tracing
    try {
      const result = await api.context.with(context, () => body(record))
      span.end()
      return result
    } catch (error) {
      span.setAttribute('error.type', String((error && error.code) || (error && error.name) || 'Error'))
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: String(error && error.message) })
      span.end()
      throw error
    }
  }
}

// ---------------------------------------------------------------- metrics

function labelText(labels) {
  const entries = Object.entries(labels)
  if (entries.length === 0) return ''
  return `{${entries.map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`
}

/** Prometheus' text format of a snapshot (Prisma's `$metrics.prometheus()` in spirit). */
function prometheusText(snapshot) {
  const lines = []
  const header = (metric, type, seen) => {
    if (seen.has(metric.key)) return
    seen.add(metric.key)
    lines.push(`# HELP ${metric.key} ${metric.description}`, `# TYPE ${metric.key} ${type}`)
  }
  const seen = new Set()
  for (const metric of snapshot.counters) {
    header(metric, 'counter', seen)
    lines.push(`${metric.key}${labelText(metric.labels)} ${metric.value}`)
  }
  for (const metric of snapshot.gauges) {
    header(metric, 'gauge', seen)
    lines.push(`${metric.key}${labelText(metric.labels)} ${metric.value}`)
  }
  for (const metric of snapshot.histograms) {
    header(metric, 'histogram', seen)
    let cumulative = 0
    for (const [bound, count] of metric.value.buckets) {
      cumulative += count
      lines.push(`${metric.key}_bucket${labelText({ ...metric.labels, le: bound === null ? '+Inf' : String(bound) })} ${cumulative}`)
    }
    lines.push(`${metric.key}_sum${labelText(metric.labels)} ${metric.value.sum}`)
    lines.push(`${metric.key}_count${labelText(metric.labels)} ${metric.value.count}`)
  }
  return lines.join('\n') + '\n'
}

const METRICS_OPTIONS = ['format', 'globalLabels']

/** `metrics()` / `metrics({ format: 'prometheus', globalLabels })` from the native JSON snapshot. */
function metrics(json, options, fail) {
  const snapshot = JSON.parse(json)
  if (options === undefined || options === null) return snapshot
  if (typeof options !== 'object') fail('metrics(): options must be an object')
  for (const key of Object.keys(options)) if (!METRICS_OPTIONS.includes(key)) fail(`metrics(): unknown option \`${key}\`; available: ${METRICS_OPTIONS.join(', ')}`)
  const { format = 'json', globalLabels } = options
  if (globalLabels !== undefined) {
    if (globalLabels === null || typeof globalLabels !== 'object') fail('metrics(): `globalLabels` must be an object of label names and values')
    for (const list of [snapshot.counters, snapshot.gauges, snapshot.histograms]) {
      for (const metric of list) metric.labels = { ...globalLabels, ...metric.labels }
    }
  }
  if (format === 'json') return snapshot
  if (format === 'prometheus') return prometheusText(snapshot)
  fail(`metrics(): \`format\` must be 'json' or 'prometheus', got ${JSON.stringify(format)}`)
}

module.exports = { Observer, tracingRegistered, tracingLikely, lookForTracing, metrics }
