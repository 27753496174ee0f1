// The calls of the fuzz campaign (fuzz.test.ts runs them in fuzz-campaign.cjs): for every
// adapter method, a fixed number of argument lists drawn with fast-check from a fixed seed,
// valid-ish or hostile. Each call carries what the campaign checks it against:
//   valid: no argument was damaged (a validation error is then wrong);
//   must:  an argument is bad in a way Prisma 7 rejects, so the call must reject;
//   spots: what a validation error should name (a field, an argument, an option), any one.
// Methods and fields come from the addon's own method table and schema, so every method
// and every field is covered and new ones join by themselves.
'use strict'
const fc = require('fast-check')

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678)
const DAY = 86_400_000
/** Keys are drawn from a few values per field, so calls find, update and collide with rows. */
const POOL = 6

// ---- hostile values -----------------------------------------------------------------------

const LONG = 'x'.repeat(200_000)
/** Strings that are strings (accepted), but hard on encoders, collations and column sizes. */
const NASTY_STRINGS = [
  '',
  ' ',
  'nul\u0000byte',
  '\u0000',
  '\uD800', // lone high surrogate
  'a\uDFFFb', // lone low surrogate
  '\uDBFF\uDFFF',
  '😀'.repeat(64),
  'é'.repeat(300),
  LONG,
  "'; DROP TABLE kavach_users; --",
  '100%_like\\',
  ' padded ',
  'null',
  '__proto__',
  'constructor',
  '\u2028\u2029\ufeff',
]
/** Numbers that are numbers, but not small integers. */
const NASTY_NUMBERS = [-0, -1, 0.5, 2.5, -2.5, 1e-7, 5e-324, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 63, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]
/** Numbers no integer column (nor a duration) can take: Prisma rejects them. */
const NON_INTEGERS = [NaN, Infinity, -Infinity, 1e300, -1e300, 1e308, Number.MAX_VALUE, -Number.MAX_VALUE]
const BIGINTS = [0n, 5n, -(2n ** 70n), 2n ** 64n]
/** Dates JS holds; some are beyond what a database (or chrono) holds. */
const EDGE_DATES = [8.64e15, -8.64e15, 8.64e15 - 1, 8.3e15, -62198755200000 /* year -1 */, 253402300800000 /* year 10000 */, 0, -1]
/** In a Json value: Prisma 7 rejects this one (measured). */
const MAX_DATE = 8.64e15

/** The error a throwing getter throws: the call must reject with this very object. */
class GetterError extends Error {}

function cyclic() {
  const o = { a: 1 }
  o.self = o
  return o
}
function deepArray(n) {
  let v = 1
  for (let i = 0; i < n; i++) v = [v]
  return v
}
function deepObject(n) {
  let v = { leaf: true }
  for (let i = 0; i < n; i++) v = { v }
  return v
}
/** An object whose own property `key` is `__proto__` (as JSON.parse makes it). */
function protoKey(value) {
  const o = {}
  Object.defineProperty(o, '__proto__', { value, enumerable: true, writable: true, configurable: true })
  return o
}
function throwingGetter(base, key) {
  const o = { ...base }
  Object.defineProperty(o, key, {
    enumerable: true,
    get() {
      throw new GetterError(`getter of ${key} throws`)
    },
  })
  return o
}

/** Things that are no scalar at all. */
const oddObject = fc.constantFrom(
  () => new Map([['a', 1]]),
  () => new Set([1, 2]),
  () => () => 1,
  () => async () => 1,
  () => class Klass {},
  () => Symbol('sym'),
  () => Object.create(null),
  () => Object.assign(Object.create(null), { a: 1 }),
  () => new Uint8Array([1, 2, 3]),
  () => Buffer.from('ab'),
  () => /re/g,
  () => new Error('an error'),
  () => Promise.resolve(1),
  () => new WeakMap(),
  () => new Proxy({ a: 1 }, {}),
  () => [],
  () => [[[]]],
  () => [1, [2, [3, [4]]]],
  () => ({}),
  () => new Number(5),
  () => new String('s'),
  () => new Boolean(false),
  () => ({ [Symbol('key')]: 1, a: 1 }),
  () => ({ toJSON: () => 'to-json' }),
  () => cyclic(),
  () => deepArray(200),
  () => deepObject(200),
  () => protoKey({ polluted: true }),
).map((make) => make())

const date = (ms) => new Date(ms)
const edgeDate = fc.constantFrom(...EDGE_DATES).map(date)
const invalidDate = fc.constant(null).map(() => new Date(NaN))

/** Anything at all, with no promise of validity. */
const anything = fc.oneof(
  fc.constantFrom(...NASTY_STRINGS),
  fc.constantFrom(...NASTY_NUMBERS, ...NON_INTEGERS),
  fc.constantFrom(...BIGINTS),
  fc.constantFrom(true, false, null, undefined),
  edgeDate,
  invalidDate,
  oddObject,
  fc.string({ maxLength: 8 }),
  fc.integer(),
)

// ---- valid values ---------------------------------------------------------------------------

const pooled = (name) => fc.integer({ min: 0, max: POOL - 1 }).map((i) => `${name}-${i}`)
const nearT0 = fc.integer({ min: -400, max: 400 }).chain((d) => fc.integer({ min: 0, max: DAY - 1 }).map((ms) => T0 + d * DAY + ms))
/** Some in the past, some in the future, so the `expiresAt` guards go both ways. */
const aroundNow = fc.integer({ min: -30 * DAY, max: 30 * DAY }).map((off) => Date.now() + off)
const validDate = fc.oneof(
  { weight: 4, arbitrary: nearT0.map(date) },
  { weight: 2, arbitrary: aroundNow.map(date) },
  { weight: 1, arbitrary: nearT0.map((ms) => new Date(ms).toISOString()) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: POOL - 1 }).map((i) => new Date(T0 + i * 60_000)) },
)
const word = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_ é日') })
const jsonLeaf = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.double({ min: -1e12, max: 1e12, noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  word,
)
const validJson = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonLeaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(word, tie('value'), { maxKeys: 4 }),
})).value

function validFor(model, field) {
  if (field.id || field.unique || /hash|token|code|challenge|secret|slug|email|endpoint|domain|did$/i.test(field.name)) {
    if (field.type === 'String') return pooled(field.name)
  }
  const base = {
    String: fc.oneof({ weight: 3, arbitrary: word }, { weight: 1, arbitrary: pooled(field.name) }),
    Int: fc.integer({ min: -1000, max: 100_000 }),
    Boolean: fc.boolean(),
    DateTime: validDate,
    Json: validJson,
  }[field.type]
  if (!base) throw new Error(`no generator for ${model.name}.${field.name}: ${field.type}`)
  return field.optional ? fc.oneof({ weight: 4, arbitrary: base }, { weight: 1, arbitrary: fc.constant(null) }) : base
}

// ---- hostile values per field type: { v, must } ----------------------------------------------

const bad = (arb) => arb.map((v) => ({ v, must: true }))
const ok = (arb) => arb.map((v) => ({ v, must: false }))

/** A Json value with hostile contents somewhere inside. */
function hostileJson() {
  const leaf = fc.oneof(
    { weight: 3, arbitrary: ok(jsonLeaf) },
    { weight: 2, arbitrary: ok(fc.constantFrom(...NASTY_STRINGS)) },
    { weight: 2, arbitrary: ok(fc.constantFrom(...NASTY_NUMBERS, ...NON_INTEGERS)) },
    { weight: 1, arbitrary: ok(fc.constantFrom(...BIGINTS)) },
    { weight: 2, arbitrary: fc.constantFrom(...EDGE_DATES).map((ms) => ({ v: new Date(ms), must: ms === MAX_DATE })) },
    { weight: 1, arbitrary: ok(invalidDate) },
    { weight: 2, arbitrary: ok(oddObject) },
    { weight: 1, arbitrary: ok(fc.constant(undefined)) },
  )
  const nest = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('node'), { maxLength: 4 }).map((items) => ({ v: items.map((i) => i.v), must: items.some((i) => i.must) })),
    object: fc
      .array(fc.tuple(fc.oneof(word, fc.constantFrom('__proto__', 'constructor', 'toString', '', '0', 'length')), tie('node')), { maxLength: 4 })
      .map((entries) => {
        const o = {}
        for (const [k, item] of entries) {
          Object.defineProperty(o, k, { value: item.v, enumerable: true, writable: true, configurable: true })
        }
        return { v: o, must: entries.some(([, item]) => item.must) }
      }),
  })).node
  return fc.oneof(
    { weight: 6, arbitrary: nest },
    // The cases of issue 11 item 3, at the root and deep inside arrays.
    { weight: 2, arbitrary: fc.constantFrom(MAX_DATE, -MAX_DATE).map((ms) => ({ v: { a: [1, { b: [new Date(ms)] }] }, must: ms === MAX_DATE })) },
    { weight: 1, arbitrary: fc.constantFrom(MAX_DATE, -MAX_DATE).map((ms) => ({ v: new Date(ms), must: ms === MAX_DATE })) },
    { weight: 1, arbitrary: bad(fc.constant(null).map(() => () => 'a function')) },
  )
}

function hostileFor(field) {
  return fc.oneof({ weight: 9, arbitrary: hostileOfType(field) }, { weight: 1, arbitrary: fc.constant({ v: undefined, must: false }) })
}

/** A hostile value for `field` (undefined aside: the caller knows whether it is missing then). */
function hostileOfType(field) {
  const nullable = field.optional
  const nul = { v: null, must: !nullable }
  switch (field.type) {
    case 'String':
      return fc.oneof(
        ok(fc.constantFrom(...NASTY_STRINGS)),
        bad(fc.constantFrom(...NASTY_NUMBERS, ...NON_INTEGERS, ...BIGINTS, true, false)),
        bad(fc.oneof(edgeDate, invalidDate)),
        bad(fc.constantFrom(() => [], () => ({}), () => new Map(), () => () => 1, () => Symbol('s'), () => ['a']).map((m) => m())),
        fc.constant(nul),
      )
    case 'Int':
      return fc.oneof(
        ok(fc.constantFrom(...NASTY_NUMBERS)),
        bad(fc.constantFrom(...NON_INTEGERS)),
        bad(fc.constantFrom('5', '', 'NaN', true, false, ...BIGINTS)),
        bad(fc.oneof(edgeDate, fc.constantFrom(() => [], () => ({}), () => [5], () => Symbol('s')).map((m) => m()))),
        fc.constant(nul),
      )
    case 'Boolean':
      return fc.oneof(bad(fc.constantFrom(0, 1, NaN, 'true', 'false', '', 0n, 1n)), bad(fc.constantFrom(() => [], () => ({}), () => new Boolean(true)).map((m) => m())), fc.constant(nul))
    case 'DateTime':
      return fc.oneof(
        ok(edgeDate),
        bad(invalidDate),
        bad(fc.constantFrom('not a date', '', '2025-13-45T99:99:99Z', 'Infinity', T0, NaN, Infinity, true, 5n)),
        bad(fc.constantFrom(() => ({}), () => [], () => [T0], () => ({ getTime: () => T0 })).map((m) => m())),
        ok(fc.constantFrom('2025-01-02T03:04:05+02:00', '+275760-09-13T00:00:00.000Z', '-271821-04-20T00:00:00.000Z', '2025-01-02')),
        fc.constant(nul),
      )
    case 'Json':
      return fc.oneof({ weight: 5, arbitrary: hostileJson() }, { weight: 1, arbitrary: fc.constant({ v: null, must: false }) })
  }
  throw new Error(`no hostile generator for ${field.type}`)
}

// ---- arguments ------------------------------------------------------------------------------

function recordArb(model) {
  const entries = model.fields.map((f) => {
    const skippable = f.optional || f.hasDefault
    const value = validFor(model, f)
    return skippable ? fc.option(value, { nil: undefined, freq: 3 }) : value
  })
  return fc.tuple(...entries).map((values) => {
    const out = {}
    model.fields.forEach((f, i) => {
      if (values[i] !== undefined) out[f.name] = values[i]
    })
    return out
  })
}

function patchArb(model) {
  return fc.subarray(model.fields, { maxLength: 4 }).chain((fields) =>
    fields.length === 0 ? fc.constant({}) : fc.tuple(...fields.map((f) => validFor(model, f))).map((values) => Object.fromEntries(fields.map((f, i) => [f.name, values[i]]))),
  )
}

function filterArb(model, arg) {
  const keys = arg.keys.map((k) => ({ key: k.key, field: model.fields.find((f) => f.name === k.field) }))
  const pageKeys = arg.page ? [arg.page.limitKey, arg.page.offsetKey] : []
  return fc
    .tuple(fc.subarray(keys), fc.subarray(pageKeys))
    .chain(([chosen, pages]) =>
      fc.tuple(fc.tuple(...chosen.map((k) => validFor(model, k.field))), fc.tuple(...pages.map(() => fc.integer({ min: 0, max: 50 })))).map(([values, pageValues]) => {
        const out = {}
        chosen.forEach((k, i) => (out[k.key] = values[i]))
        pages.forEach((k, i) => (out[k] = pageValues[i]))
        return out
      }),
    )
}

function validArg(model, arg) {
  switch (arg.kind) {
    case 'key':
      return validFor(model, model.fields.find((f) => f.name === arg.field))
    case 'record':
      return recordArb(model)
    case 'patch':
      return patchArb(model)
    case 'filter':
      return fc.oneof({ weight: 4, arbitrary: filterArb(model, arg) }, { weight: 1, arbitrary: fc.constant(undefined) })
  }
  throw new Error(`unknown argument kind ${arg.kind}`)
}

const argName = (arg) => (arg.kind === 'key' ? arg.field : arg.kind === 'record' ? 'input' : arg.kind === 'patch' ? 'data' : 'filter')
const tick = (name) => `\`${name}\``
const UNKNOWN_KEYS = ['bogus', 'ID', 'created_at', 'toString', 'Id']

/**
 * One damage to a valid argument list, as a function of the draws; returns the spots the
 * error may name and whether the damage must be rejected.
 */
function damageArb(model, method) {
  const args = method.args
  const kinds = []
  // Every argument can be replaced by anything.
  args.forEach((arg, i) => {
    kinds.push(
      fc.record({ what: fc.constant('replace'), i: fc.constant(i), value: anything }),
      fc.record({ what: fc.constant('drop'), i: fc.constant(i) }),
    )
    if (arg.kind === 'key') {
      const field = model.fields.find((f) => f.name === arg.field)
      kinds.push(fc.record({ what: fc.constant('hostile-key'), i: fc.constant(i), value: hostileFor(field) }))
    }
    if (arg.kind === 'record' || arg.kind === 'patch') {
      kinds.push(
        fc.record({ what: fc.constant('hostile-field'), i: fc.constant(i), field: fc.constantFrom(...model.fields), value: fc.constant(null) }).chain((d) =>
          hostileFor(d.field).map((value) => ({ ...d, value })),
        ),
        fc.record({ what: fc.constant('unknown-key'), i: fc.constant(i), key: fc.constantFrom(...UNKNOWN_KEYS, '__proto__', ''), value: anything }),
        fc.record({ what: fc.constant('getter'), i: fc.constant(i), field: fc.constantFrom(...model.fields) }),
        fc.record({ what: fc.constant('as-map'), i: fc.constant(i) }),
      )
      if (arg.kind === 'record') {
        const required = model.fields.filter((f) => !f.optional && !f.hasDefault)
        if (required.length) kinds.push(fc.record({ what: fc.constant('missing-field'), i: fc.constant(i), field: fc.constantFrom(...required) }))
      }
    }
    if (arg.kind === 'filter') {
      const keys = arg.keys.map((k) => ({ key: k.key, field: model.fields.find((f) => f.name === k.field) }))
      if (keys.length) {
        kinds.push(
          fc.record({ what: fc.constant('hostile-filter'), i: fc.constant(i), key: fc.constantFrom(...keys) }).chain((d) => hostileFor(d.key.field).map((value) => ({ ...d, value }))),
        )
      }
      if (arg.page) {
        kinds.push(
          fc.record({
            what: fc.constant('hostile-page'),
            i: fc.constant(i),
            key: fc.constantFrom(arg.page.limitKey, arg.page.offsetKey),
            value: fc.oneof(ok(fc.constantFrom(-1, 0.5, 2.5, 2 ** 31, 2 ** 53, -0)), bad(fc.constantFrom(...NON_INTEGERS, '5', true, 5n, null)), bad(fc.constantFrom(() => ({}), () => [1], () => new Date(0)).map((m) => m()))),
          }),
        )
      }
      kinds.push(fc.record({ what: fc.constant('unknown-key'), i: fc.constant(i), key: fc.constantFrom(...UNKNOWN_KEYS, '__proto__'), value: anything }))
    }
  })
  kinds.push(fc.record({ what: fc.constant('extra'), values: fc.array(anything, { minLength: 1, maxLength: 3 }) }))
  return fc.oneof(...kinds)
}

/** A plain copy of an object argument to damage further ({} if it is none by now). */
const copy = (v) => (v !== null && typeof v === 'object' && !(v instanceof Map) && !Array.isArray(v) ? { ...v } : {})

/** Applies `d` to the argument list `args` (a fresh copy); returns { spots, must }. */
function applyDamage(model, method, args, d) {
  const arg = method.args[d.i]
  const name = arg && argName(arg)
  const wholeArg = name && [`(${name})`, tick(name), 'must be an object', 'missing required field', 'unknown field']
  switch (d.what) {
    case 'replace': {
      args[d.i] = d.value
      const v = d.value
      let must = false
      if (arg.kind === 'key') must = v === undefined || !keyValueIsFine(model.fields.find((f) => f.name === arg.field), v)
      if (arg.kind === 'record') must = v === null || typeof v !== 'object' || Array.isArray(v) || !hasAllRequired(model, v)
      if (arg.kind === 'patch') must = v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || Array.isArray(v)
      return { spots: wholeArg, must }
    }
    case 'drop': {
      // Everything from this argument on is left out, as a caller passing fewer arguments.
      args.length = Math.min(args.length, d.i)
      const dropped = method.args.slice(d.i)
      const must = dropped.some((a) => a.kind !== 'filter')
      return { spots: dropped.flatMap((a) => [tick(argName(a)), `(${argName(a)})`, 'required']), must }
    }
    case 'hostile-key':
      args[d.i] = d.value.v
      return { spots: [tick(name)], must: d.value.must || d.value.v === undefined }
    case 'hostile-field': {
      const target = copy(args[d.i])
      target[d.field.name] = d.value.v
      args[d.i] = target
      const requiredMissing = arg.kind === 'record' && d.value.v === undefined && !d.field.optional && !d.field.hasDefault
      return { spots: [tick(d.field.name)], must: d.value.must || requiredMissing }
    }
    case 'missing-field': {
      const target = copy(args[d.i])
      delete target[d.field.name]
      args[d.i] = target
      return { spots: [tick(d.field.name)], must: true }
    }
    case 'unknown-key': {
      const target = copy(args[d.i])
      Object.defineProperty(target, d.key, { value: d.value, enumerable: true, writable: true, configurable: true })
      args[d.i] = target
      // Prisma refuses unknown fields of an input; the TS adapter never passes unknown filters on.
      return { spots: [tick(d.key)], must: arg.kind !== 'filter' && UNKNOWN_KEYS.includes(d.key) }
    }
    case 'getter': {
      args[d.i] = throwingGetter(args[d.i], d.field.name)
      return { spots: [tick(d.field.name)], must: true, getter: true }
    }
    case 'as-map': {
      // The same entries in a Map: no own properties, so an empty object to every reader.
      args[d.i] = new Map(Object.entries(copy(args[d.i])))
      return { spots: wholeArg, must: arg.kind === 'record' }
    }
    case 'hostile-filter': {
      const target = copy(args[d.i])
      target[d.key.key] = d.value.v
      args[d.i] = target
      // null means "is null" for an equality filter; Prisma refuses it on a required field.
      return { spots: [tick(d.key.key)], must: d.value.v !== null && d.value.must }
    }
    case 'hostile-page': {
      const target = copy(args[d.i])
      target[d.key] = d.value.v
      args[d.i] = target
      return { spots: [tick(d.key)], must: d.value.must }
    }
    case 'extra':
      while (args.length < method.args.length) args.push(undefined)
      args.push(...d.values)
      return { spots: ['argument'], must: false }
  }
  throw new Error(`unknown damage ${d.what}`)
}

function keyValueIsFine(field, v) {
  if (v === null) return field.optional
  switch (field.type) {
    case 'String':
      return typeof v === 'string'
    case 'Int':
      return typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 1e300
    case 'Boolean':
      return typeof v === 'boolean'
    case 'DateTime':
      return (v instanceof Date && !Number.isNaN(v.getTime())) || (typeof v === 'string' && !Number.isNaN(Date.parse(v)) && /^\d{4}-\d\d-\d\dT/.test(v))
  }
  return true
}

function hasAllRequired(model, v) {
  if (v instanceof Map || v instanceof Set) return false
  return model.fields.every((f) => f.optional || f.hasDefault || (Object.prototype.propertyIsEnumerable.call(v, f.name) && v[f.name] !== undefined))
}

/** Arbitrary of one call to `method`: { args, valid, must, spots, damages }. */
function callArb(model, method) {
  const valid = fc.tuple(...method.args.map((a) => validArg(model, a)))
  const damages = fc.array(damageArb(model, method), { minLength: 1, maxLength: 3 })
  return fc.oneof(
    { weight: 2, arbitrary: valid.map((args) => ({ args, valid: true, must: false, spots: [], damages: [] })) },
    {
      weight: 5,
      arbitrary: fc.tuple(valid, damages).map(([args, ds]) => {
        args = [...args]
        // Field-level damages first, then whole-argument ones (which undo the former on their
        // argument), then a throwing getter (copying the object would call it; once), then
        // dropping arguments, then extra ones.
        const stage = (d) => (d.what === 'extra' ? 4 : d.what === 'drop' ? 3 : d.what === 'getter' ? 2 : ['replace', 'as-map', 'hostile-key'].includes(d.what) ? 1 : 0)
        const ordered = [...ds].sort((a, b) => stage(a) - stage(b)).filter((d, k, all) => d.what !== 'getter' || all.findIndex((x) => x.what === 'getter') === k)
        let effects = []
        for (const d of ordered) {
          if (d.what === 'getter' && (args[d.i] === null || typeof args[d.i] !== 'object' || args[d.i] instanceof Map)) continue
          if (stage(d) === 1) effects = effects.filter((e) => e.i !== d.i)
          if (d.what === 'drop') effects = effects.filter((e) => e.i === undefined || e.i < d.i)
          const effect = applyDamage(model, method, args, d)
          effects.push({ ...effect, i: d.i, what: d.what + (d.field ? `:${d.field.name}` : d.key ? `:${d.key.key ?? d.key}` : d.i !== undefined ? `:${d.i}` : '') })
        }
        const spots = [...new Set(effects.flatMap((e) => e.spots))]
        const must = effects.some((e) => e.must)
        const getter = effects.some((e) => e.getter)
        const done = effects.map((e) => e.what)
        return { args, valid: false, must, spots, damages: done, getter }
      }),
    },
  )
}

// ---- transactions ---------------------------------------------------------------------------

const ISOLATION = ['ReadUncommitted', 'ReadCommitted', 'RepeatableRead', 'Serializable']

function durationArb() {
  return fc.oneof(
    { weight: 3, arbitrary: ok(fc.constantFrom(undefined, 5000, 2000, 10_000, 0, 1, 2 ** 31 - 1, 1.5)) },
    { weight: 4, arbitrary: bad(fc.constantFrom(Infinity, -Infinity, NaN, 1e300, 1e308, Number.MAX_VALUE, -1, -1e300)) },
    { weight: 2, arbitrary: bad(fc.constantFrom('5000', '', 'Infinity', true, 5n, [5000], { ms: 5 })) },
    { weight: 1, arbitrary: ok(fc.constantFrom(null, 2 ** 53)) },
  )
}

/** Arbitrary of one `transaction(fn, options)` call: options and what fn does. */
function transactionArb(provider) {
  const isolation = fc.oneof(
    ok(fc.constantFrom(undefined, 'Serializable')),
    fc.constantFrom(...ISOLATION.slice(0, 3)).map((v) => ({ v, must: provider === 'sqlite' })),
    bad(fc.constantFrom('bogus', '', 'serializable', 'SERIALIZABLE', 5, true, {}, ['Serializable'])),
  )
  const options = fc
    .record({
      timeout: durationArb(),
      maxWait: durationArb(),
      isolationLevel: isolation,
      unknown: fc.option(fc.record({ key: fc.constantFrom('timeOut', 'maxwait', 'isolation', 'bogus', 'timeoutMs', '__proto__'), value: anything }), { freq: 4 }),
    })
    .map(({ timeout, maxWait, isolationLevel, unknown }) => {
      const o = {}
      const spots = []
      let must = false
      for (const [key, item] of [['timeout', timeout], ['maxWait', maxWait], ['isolationLevel', isolationLevel]]) {
        if (item.v === undefined) continue
        o[key] = item.v
        // Any option given may be the one an error names (null, 0 and 1.5 may be refused too).
        spots.push(tick(key), key)
        must = must || item.must
      }
      if (unknown) {
        Object.defineProperty(o, unknown.key, { value: unknown.value, enumerable: true, writable: true, configurable: true })
        must = true
        spots.push(tick(unknown.key), unknown.key)
      }
      return { v: o, must, spots }
    })
  const wholeOptions = fc.oneof(
    { weight: 8, arbitrary: options },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null).map((v) => ({ v, must: false, spots: [] })) },
    { weight: 1, arbitrary: anything.map((v) => ({ v, must: false, spots: ['options', 'option'] })) },
  )
  const fn = fc.oneof({ weight: 9, arbitrary: fc.constantFrom('write', 'write-throw', 'nested') }, { weight: 1, arbitrary: fc.constantFrom('not-a-function') })
  return fc.tuple(fn, wholeOptions).map(([fnKind, opts]) => ({
    fnKind,
    options: opts.v,
    must: opts.must || fnKind === 'not-a-function',
    spots: fnKind === 'not-a-function' ? [...opts.spots, 'function'] : opts.spots,
    valid: !opts.must && fnKind !== 'not-a-function' && (opts.v === undefined || isPlainValid(opts.v)),
  }))
}

/** Options any caller may pass: the defaults' own kind of values. */
function isPlainValid(o) {
  if (o === null || typeof o !== 'object' || Object.getPrototypeOf(o) !== Object.prototype) return false
  return Object.entries(o).every(([k, v]) =>
    k === 'isolationLevel' ? v === 'Serializable' : (k === 'timeout' || k === 'maxWait') && [5000, 2000, 10_000].includes(v),
  )
}

// ---- the campaign ---------------------------------------------------------------------------

/**
 * Every call of the campaign, deterministic in `seed`: `perMethod` calls of every method, then
 * `transactions` calls of `transaction`, interleaved round-robin (so a method that breaks the
 * adapter breaks it early for the others too, and is found out).
 */
function campaign({ methods, models, provider, seed, perMethod, transactions }) {
  const byName = new Map(models.map((m) => [m.name, m]))
  const perMethodCalls = methods.map((method, index) =>
    fc.sample(callArb(byName.get(method.model), method), { seed: (seed + index * 7919) | 0, numRuns: perMethod }).map((c) => ({ kind: 'call', method: method.name, ...c })),
  )
  const txCalls = fc.sample(transactionArb(provider), { seed: (seed ^ 0x7458) | 0, numRuns: transactions }).map((c) => ({ kind: 'transaction', method: 'transaction', ...c }))
  const out = []
  for (let round = 0; round < perMethod; round++) {
    for (const calls of perMethodCalls) out.push(calls[round])
    const share = Math.ceil(transactions / perMethod)
    out.push(...txCalls.slice(round * share, (round + 1) * share))
  }
  return out
}

module.exports = { campaign, GetterError, callArb, validArg, recordArb, T0 }
