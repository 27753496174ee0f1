// Differential test: the same seeded sequence of calls goes to the native adapter (database A)
// and to @kavachos/prisma over Prisma 7 + better-sqlite3 (database B). Every result must be
// the same (errors by `code`; validation errors have none), and afterwards every kavach_*
// table must hold the same rows, byte for byte.
//
// Seeds: PARITY_SEEDS (how many, default 3) from PARITY_SEED_START (default 1), or a list in
// PARITY_SEED_LIST ("7,42"); PARITY_CALLS top-level calls per seed (default 2000);
// PARITY_INCLUDE_KNOWN=all (or a list, e.g. jsonroot,limit) also generates the inputs of known
// mismatches (see generator.ts).
// `npm run test:parity -- --seeds 200` sets these (scripts/parity.mjs).
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type Call, CallGenerator, KNOWN_MISMATCHES, type KnownMismatch } from './generator'
import {
  type Adapter,
  canon,
  createTables,
  describeOutcome,
  invoke,
  diffDumps,
  dumpTables,
  methodNames,
  openNative,
  openPrisma,
  type Outcome,
  outcomeKey,
  removeDir,
  show,
  tempDir,
} from './harness'
import { parseSchema } from './prisma-schema'

const env = process.env
const CALLS = Number(env.PARITY_CALLS ?? 2000)
// PARITY_INCLUDE_KNOWN: "all", or a comma list of KNOWN_MISMATCHES (generator.ts).
const INCLUDE = new Set(
  (env.PARITY_INCLUDE_KNOWN === 'all' || env.PARITY_INCLUDE_KNOWN === '1' ? KNOWN_MISMATCHES.join(',') : env.PARITY_INCLUDE_KNOWN ?? '')
    .split(',')
    .filter(Boolean),
) as Set<KnownMismatch>
for (const k of INCLUDE) if (!KNOWN_MISMATCHES.includes(k)) throw new Error(`PARITY_INCLUDE_KNOWN: unknown '${k}'; known: ${KNOWN_MISMATCHES.join(', ')}`)
const SEEDS: number[] = env.PARITY_SEED_LIST
  ? env.PARITY_SEED_LIST.split(',').map((s) => Number(s.trim()))
  : Array.from({ length: Number(env.PARITY_SEEDS ?? 3) }, (_, i) => Number(env.PARITY_SEED_START ?? 1) + i)
const MAX_REPORTED = 15

const schema = parseSchema(fs.readFileSync(path.resolve(__dirname, '../../schema.prisma'), 'utf8'))

/** What one side did for one step: the step's outcome and, for a transaction, each inner call's. */
interface StepResult {
  outcome: Outcome
  inner: Outcome[]
}

const FN_ERROR = Symbol('fn error')
const FN_VALUE = Symbol('fn value')

async function runStep(adapter: Adapter, call: Call): Promise<StepResult> {
  if (call.kind === 'call') return { outcome: await invoke(adapter, call.method, call.args), inner: [] }
  const inner: Outcome[] = []
  const own = new Error(`fn throws (mode ${call.mode})`)
  const returned = { returnedBy: 'fn' }
  const body = async (tx: Adapter) => {
    for (let j = 0; j < call.calls.length; j++) {
      if (call.mode === 'throw' && j === call.throwAfter) throw own
      const step = call.calls[j] as Extract<Call, { kind: 'call' }>
      const outcome = await invoke(tx, step.method, step.args)
      inner.push(outcome)
      if (!outcome.ok && call.mode === 'propagate') throw outcome.error
    }
    if (call.mode === 'throw') throw own
    return returned
  }
  const fn = call.mode === 'nested' ? (tx: Adapter) => tx.transaction(body) : body
  const outcome = await invoke(adapter, 'transaction', [fn])
  // The transaction must hand back fn's own value / error object, not a copy.
  if (outcome.ok && outcome.value === returned) return { outcome: { ok: true, value: FN_VALUE }, inner }
  if (!outcome.ok && outcome.error === own) return { outcome: { ok: false, error: FN_ERROR }, inner }
  return { outcome, inner }
}

function stepKey(result: StepResult): string[] {
  const key = (o: Outcome) =>
    o.ok && o.value === FN_VALUE ? "resolved with fn's own value" : !o.ok && o.error === FN_ERROR ? "rejected with fn's own error" : outcomeKey(o)
  return [key(result.outcome), ...result.inner.map(key)]
}

function describeStep(result: StepResult): string {
  const d = (o: Outcome) =>
    o.ok && o.value === FN_VALUE ? "resolved with fn's own value" : !o.ok && o.error === FN_ERROR ? "rejected with fn's own error" : describeOutcome(o)
  return [d(result.outcome), ...result.inner.map((o, j) => `  inner[${j}]: ${d(o)}`)].join('\n')
}

function describeCall(call: Call): string {
  if (call.kind === 'call') return `${call.method}(${call.args.map((a) => show(a)).join(', ')})`
  return `transaction[mode=${call.mode}${call.mode === 'throw' ? `, throwAfter=${call.throwAfter}` : ''}](\n${call.calls
    .map((c, j) => `  [${j}] ${describeCall(c)}`)
    .join('\n')}\n)`
}

interface Mismatch {
  seed: number
  index: number
  call: Call
  native: StepResult
  prisma: StepResult
}

const dirs: string[] = []
afterAll(() => {
  if (env.PARITY_KEEP_DB !== '1') dirs.forEach(removeDir)
})

describe('native adapter vs @kavachos/prisma on Prisma 7 (differential)', () => {
  it.each(SEEDS)(
    'seed %i: every result and every stored row are the same',
    async (seed) => {
      const dir = tempDir(`seed${seed}`)
      dirs.push(dir)
      const fileA = path.join(dir, 'native.db')
      const fileB = path.join(dir, 'prisma.db')
      createTables(fileB) // Prisma cannot create tables without the schema engine: use our DDL.
      const A = openNative(fileA)
      const B = openPrisma(fileB)

      const generator = new CallGenerator(seed, schema, { include: INCLUDE })
      const calls: Call[] = Array.from({ length: CALLS }, () => generator.next())
      const used = new Set<string>()
      const txModes = new Set<string>()
      let total = 0
      for (const call of calls) {
        if (call.kind === 'call') used.add(call.method)
        else {
          txModes.add(call.mode)
          call.calls.forEach((c) => c.kind === 'call' && used.add(c.method))
        }
        total += call.kind === 'call' ? 1 : 1 + call.calls.length
      }

      const mismatches: Mismatch[] = []
      const stats = new Map<string, number>()
      const started = Date.now()
      try {
        for (let index = 0; index < calls.length; index++) {
          const call = calls[index]
          const [native, prisma] = await Promise.all([runStep(A.adapter, call), runStep(B.adapter, call)])
          if (canon(stepKey(native)) !== canon(stepKey(prisma))) mismatches.push({ seed, index, call, native, prisma })
          for (const o of [prisma.outcome, ...prisma.inner]) {
            const kind = o.ok
              ? o.value === null
                ? 'null'
                : Array.isArray(o.value)
                  ? o.value.length > 1 ? 'rows>1' : `rows=${o.value.length}`
                  : typeof o.value === 'object' ? 'row' : String(typeof o.value)
              : `error ${(o.error as any)?.code ?? (o.error === FN_ERROR ? 'fn' : 'no-code')}`
            stats.set(kind, (stats.get(kind) ?? 0) + 1)
          }
        }
      } finally {
        await A.close()
        await B.close()
      }
      const elapsed = Date.now() - started

      const report = mismatches.slice(0, MAX_REPORTED).map(
        (m) =>
          `seed ${m.seed}, call #${m.index}: ${describeCall(m.call)}\n native: ${describeStep(m.native)}\n prisma: ${describeStep(m.prisma)}`,
      )
      if (mismatches.length > MAX_REPORTED) report.push(`... and ${mismatches.length - MAX_REPORTED} more mismatches`)
      const rowDiffs = diffDumps(dumpTables(fileA), dumpTables(fileB))
      if (env.PARITY_VERBOSE === '1' || mismatches.length || rowDiffs.length) {
        console.log(
          `seed ${seed}: ${calls.length} steps (${total} calls incl. transaction bodies) in ${elapsed} ms, ${mismatches.length} mismatches, ${rowDiffs.length} row differences\n` +
            `  outcomes (Prisma side): ${[...stats].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`,
        )
      }
      if (report.length) console.log(`seed ${seed} result mismatches:\n\n${report.join('\n\n')}`)
      if (rowDiffs.length) console.log(`seed ${seed} stored rows differ (native vs prisma):\n${rowDiffs.join('\n')}`)

      expect(mismatches.length, `seed ${seed}: ${mismatches.length} calls gave different results (printed above)`).toBe(0)
      expect(rowDiffs.length, `seed ${seed}: stored rows differ (printed above)`).toBe(0)
      // The sequence must reach every method and every kind of transaction.
      if (CALLS >= 2000) {
        expect(methodNames.filter((m) => !used.has(m))).toEqual([])
        expect([...txModes].sort()).toEqual(['commit', 'nested', 'propagate', 'throw'])
      }
    },
    Math.max(60_000, CALLS * 40),
  )
})
