#!/usr/bin/env node
// Runs the differential parity test (__test__/parity/differential.test.ts) over many seeds,
// split across parallel vitest processes.
//
//   npm run test:parity -- --seeds 200            seeds 1..200
//   npm run test:parity -- --seeds 50 --start 1000
//   npm run test:parity -- --seed 17,42           just these seeds
//   options: --calls N (top-level calls per seed, default 2000), --jobs N (default: CPUs),
//            --include-known[=jsonroot,maxdouble,protokeys,limit] (also generate the inputs of known
//            mismatches; all of them without a list), --keep (keep the databases),
//            --verbose (print per-seed statistics)
import { spawn } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensurePrismaClient } from '../__test__/parity/prisma-client.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function parseArgs(argv) {
  const opts = { seeds: 200, start: 1, list: null, calls: 2000, jobs: os.availableParallelism?.() ?? os.cpus().length, includeKnown: false, keep: false, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=')
    const value = () => inline ?? argv[++i]
    switch (flag) {
      case '--seeds': opts.seeds = Number(value()); break
      case '--start': opts.start = Number(value()); break
      case '--seed': opts.list = value().split(',').map(Number); break
      case '--calls': opts.calls = Number(value()); break
      case '--jobs': opts.jobs = Number(value()); break
      case '--include-known': opts.includeKnown = inline ?? 'all'; break
      case '--keep': opts.keep = true; break
      case '--verbose': opts.verbose = true; break
      case '--help':
        console.log('usage: npm run test:parity -- [--seeds N] [--start S] [--seed a,b] [--calls N] [--jobs N] [--include-known[=a,b]] [--keep] [--verbose]')
        process.exit(0)
      default:
        console.error(`unknown option ${argv[i]} (try --help)`)
        process.exit(2)
    }
  }
  const seeds = opts.list ?? Array.from({ length: opts.seeds }, (_, i) => opts.start + i)
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s))) throw new Error('seeds must be integers')
  return { ...opts, seeds }
}

const opts = parseArgs(process.argv.slice(2))
ensurePrismaClient({ quiet: false })

const jobs = Math.max(1, Math.min(opts.jobs, opts.seeds.length))
const chunks = Array.from({ length: jobs }, (_, j) => opts.seeds.filter((_, i) => i % jobs === j))
const vitest = path.join(root, 'node_modules/vitest/vitest.mjs')
const started = Date.now()
console.log(`parity: ${opts.seeds.length} seeds x ${opts.calls} calls in ${jobs} processes${opts.includeKnown ? `, including known mismatches: ${opts.includeKnown}` : ''}`)

const results = await Promise.all(
  chunks.map(
    (seeds, j) =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [vitest, 'run', '__test__/parity/differential.test.ts', '--reporter=dot'], {
          cwd: root,
          env: {
            ...process.env,
            PARITY_SEED_LIST: seeds.join(','),
            PARITY_CALLS: String(opts.calls),
            PARITY_INCLUDE_KNOWN: opts.includeKnown || '',
            PARITY_KEEP_DB: opts.keep ? '1' : '',
            PARITY_VERBOSE: opts.verbose ? '1' : '',
            NO_COLOR: '1',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let output = ''
        child.stdout.on('data', (d) => (output += d))
        child.stderr.on('data', (d) => (output += d))
        child.on('close', (code) => resolve({ j, seeds, code, output }))
      }),
  ),
)

let failed = 0
for (const r of results) {
  if (r.code !== 0 || opts.verbose) {
    console.log(`\n===== process ${r.j} (seeds ${r.seeds.join(',')}) exited ${r.code} =====\n${r.output}`)
  }
  if (r.code !== 0) failed++
}
const failedSeeds = results.flatMap((r) => [...r.output.matchAll(/seed (\d+): \d+ calls gave different results|seed (\d+): stored rows differ/g)].map((m) => m[1] ?? m[2]))
console.log(
  `\nparity: ${opts.seeds.length} seeds, ${failed ? `${failed} process(es) FAILED` : 'all passed'}` +
    `${failedSeeds.length ? `; failing seeds: ${[...new Set(failedSeeds)].join(', ')}` : ''} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
)
process.exit(failed ? 1 : 0)
