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
import { type Call, CallGenerator } from './generator'
import { BRIDGE, canon, createTables, diffDumps, dumpTables, methodNames, openNative, openNativeBridge, openPrisma, removeDir, tempDir } from './harness'
import { parseSchema } from './prisma-schema'
import { countOutcomes, paritySettings, describeCall, describeStep, type Mismatch, runStep, stepKey } from './steps'

const env = process.env
const { CALLS, INCLUDE, SEEDS } = paritySettings(3)
const MAX_REPORTED = 15

const schema = parseSchema(fs.readFileSync(path.resolve(__dirname, '../../schema.prisma'), 'utf8'))

const dirs: string[] = []
afterAll(() => {
  if (env.PARITY_KEEP_DB !== '1') dirs.forEach(removeDir)
})

describe(`native adapter${BRIDGE ? ' on a Prisma client' : ''} vs @kavachos/prisma on Prisma 7 (differential)`, () => {
  it.each(SEEDS)(
    'seed %i: every result and every stored row are the same',
    async (seed) => {
      const dir = tempDir(`seed${seed}`)
      dirs.push(dir)
      const fileA = path.join(dir, 'native.db')
      const fileB = path.join(dir, 'prisma.db')
      createTables(fileB) // Prisma cannot create tables without the schema engine: use our DDL.
      // Bridge mode: the native adapter on a Prisma client of its own (it never creates tables).
      if (BRIDGE) createTables(fileA)
      const A = BRIDGE ? openNativeBridge(fileA) : openNative(fileA)
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
          countOutcomes(stats, prisma)
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
