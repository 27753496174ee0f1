// One step of a differential sequence (a call, or a transaction of calls) run on one adapter,
// and how two sides' step results are compared and described. Shared by differential.test.ts
// (SQLite) and differential-servers.test.ts (PostgreSQL, MySQL/MariaDB).
import { type Call, KNOWN_MISMATCHES, type KnownMismatch } from './generator'
import { type Adapter, describeOutcome, invoke, type Outcome, outcomeKey, show } from './harness'

/** What one side did for one step: the step's outcome and, for a transaction, each inner call's. */
export interface StepResult {
  outcome: Outcome
  inner: Outcome[]
}

export const FN_ERROR = Symbol('fn error')
export const FN_VALUE = Symbol('fn value')

export async function runStep(adapter: Adapter, call: Call): Promise<StepResult> {
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

export function stepKey(result: StepResult): string[] {
  const key = (o: Outcome) =>
    o.ok && o.value === FN_VALUE ? "resolved with fn's own value" : !o.ok && o.error === FN_ERROR ? "rejected with fn's own error" : outcomeKey(o)
  return [key(result.outcome), ...result.inner.map(key)]
}

export function describeStep(result: StepResult): string {
  const d = (o: Outcome) =>
    o.ok && o.value === FN_VALUE ? "resolved with fn's own value" : !o.ok && o.error === FN_ERROR ? "rejected with fn's own error" : describeOutcome(o)
  return [d(result.outcome), ...result.inner.map((o, j) => `  inner[${j}]: ${d(o)}`)].join('\n')
}

export function describeCall(call: Call): string {
  if (call.kind === 'call') return `${call.method}(${call.args.map((a) => show(a)).join(', ')})`
  return `transaction[mode=${call.mode}${call.mode === 'throw' ? `, throwAfter=${call.throwAfter}` : ''}](\n${call.calls
    .map((c, j) => `  [${j}] ${describeCall(c)}`)
    .join('\n')}\n)`
}

export interface Mismatch {
  seed: number
  index: number
  call: Call
  native: StepResult
  prisma: StepResult
}

/** Tallies what a step's outcomes were (null, row, rows=n, error code, ...) into `stats`. */
export function countOutcomes(stats: Map<string, number>, result: StepResult) {
  for (const o of [result.outcome, ...result.inner]) {
    const kind = o.ok
      ? o.value === null
        ? 'null'
        : Array.isArray(o.value)
          ? o.value.length > 1
            ? 'rows>1'
            : `rows=${o.value.length}`
          : typeof o.value === 'object'
            ? 'row'
            : String(typeof o.value)
      : `error ${(o.error as any)?.code ?? (o.error === FN_ERROR ? 'fn' : 'no-code')}`
    stats.set(kind, (stats.get(kind) ?? 0) + 1)
  }
}

/**
 * The run's settings from the environment (scripts/parity.mjs sets them): PARITY_CALLS,
 * PARITY_SEED_LIST or PARITY_SEEDS (default `defaultSeeds`) from PARITY_SEED_START, and
 * PARITY_INCLUDE_KNOWN ("all", or a comma list of KNOWN_MISMATCHES in generator.ts).
 */
export function paritySettings(defaultSeeds: number) {
  const env = process.env
  const known = env.PARITY_INCLUDE_KNOWN === 'all' || env.PARITY_INCLUDE_KNOWN === '1' ? KNOWN_MISMATCHES.join(',') : env.PARITY_INCLUDE_KNOWN ?? ''
  const INCLUDE = new Set(known.split(',').filter(Boolean)) as Set<KnownMismatch>
  for (const k of INCLUDE) {
    if (!KNOWN_MISMATCHES.includes(k)) throw new Error(`PARITY_INCLUDE_KNOWN: unknown '${k}'; known: ${KNOWN_MISMATCHES.join(', ')}`)
  }
  const SEEDS: number[] = env.PARITY_SEED_LIST
    ? env.PARITY_SEED_LIST.split(',').map((s) => Number(s.trim()))
    : Array.from({ length: Number(env.PARITY_SEEDS ?? defaultSeeds) }, (_, i) => Number(env.PARITY_SEED_START ?? 1) + i)
  return { CALLS: Number(env.PARITY_CALLS ?? 2000), INCLUDE, SEEDS }
}
