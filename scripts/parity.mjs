#!/usr/bin/env node
// Runs the differential parity test over many seeds, split across parallel vitest processes:
// on SQLite (__test__/parity/differential.test.ts), or with --provider postgresql|mysql on a
// server (__test__/parity/differential-servers.test.ts; KAVACH_TEST_PG_URL / KAVACH_TEST_MYSQL_URL,
// default the local servers of the README; a fresh schema / database per side and seed).
//
//   npm run test:parity -- --seeds 200            seeds 1..200
//   npm run test:parity -- --seeds 50 --start 1000
//   npm run test:parity -- --seed 17,42           just these seeds
//   npm run test:parity -- --provider mysql --seeds 20
//   options: --provider sqlite|postgresql|mysql (default sqlite), --calls N (top-level calls per
//            seed, default 2000), --jobs N (default: CPUs; at most 4 on a server),
//            --include-known[=jsonroot,maxdouble,protokeys,limit,nul,txabort,tieorder,toolong,rootexp]
//            (also generate / compare strictly the known mismatches; all of them without a list),
//            --keep (keep the databases),
//            --verbose (print per-seed statistics)
import { spawn } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensurePrismaClient } from '../__test__/parity/prisma-client.mjs'

const SERVERS = [
  { provider: 'postgresql', env: 'KAVACH_TEST_PG_URL', url: 'postgresql://postgres@127.0.0.1:5432/test' },
  { provider: 'mysql', env: 'KAVACH_TEST_MYSQL_URL', url: 'mysql://root@127.0.0.1:3306/test' },
]
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function parseArgs(argv) {
  const opts = { provider: 'sqlite', seeds: 200, start: 1, list: null, calls: 2000, jobs: os.availableParallelism?.() ?? os.cpus().length, includeKnown: false, keep: false, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=')
    const value = () => inline ?? argv[++i]
    switch (flag) {
      case '--provider': opts.provider = value(); break
      case '--seeds': opts.seeds = Number(value()); break
      case '--start': opts.start = Number(value()); break
      case '--seed': opts.list = value().split(',').map(Number); break
      case '--calls': opts.calls = Number(value()); break
      case '--jobs': opts.jobs = Number(value()); break
      case '--include-known': opts.includeKnown = inline ?? 'all'; break
      case '--keep': opts.keep = true; break
      case '--verbose': opts.verbose = true; break
      case '--help':
        console.log('usage: npm run test:parity -- [--provider sqlite|postgresql|mysql] [--seeds N] [--start S] [--seed a,b] [--calls N] [--jobs N] [--include-known[=a,b]] [--keep] [--verbose]')
        process.exit(0)
      default:
        console.error(`unknown option ${argv[i]} (try --help)`)
        process.exit(2)
    }
  }
  const seeds = opts.list ?? Array.from({ length: opts.seeds }, (_, i) => opts.start + i)
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s))) throw new Error('seeds must be integers')
  if (!['sqlite', ...SERVERS.map((s) => s.provider)].includes(opts.provider)) {
    console.error(`--provider must be sqlite, postgresql or mysql, not '${opts.provider}'`)
    process.exit(2)
  }
  return { ...opts, seeds }
}

const opts = parseArgs(process.argv.slice(2))
const server = SERVERS.find((s) => s.provider === opts.provider)
const serverEnv = {}
if (server) {
  // Only this provider's vitest project is enabled; the other server's variable is dropped.
  for (const s of SERVERS) serverEnv[s.env] = s === server ? process.env[s.env] || s.url : undefined
  if (!process.env[server.env]) console.log(`${server.env} is not set: using ${server.url}`)
  ensurePrismaClient({ quiet: false, provider: server.provider })
} else ensurePrismaClient({ quiet: false })
const testFile = server ? '__test__/parity/differential-servers.test.ts' : '__test__/parity/differential.test.ts'
const project = server ? server.provider : 'sqlite'

const jobs = Math.max(1, Math.min(opts.jobs, server ? 4 : Infinity, opts.seeds.length))
const chunks = Array.from({ length: jobs }, (_, j) => opts.seeds.filter((_, i) => i % jobs === j))
const vitest = path.join(root, 'node_modules/vitest/vitest.mjs')
const started = Date.now()
console.log(`parity (${project}): ${opts.seeds.length} seeds x ${opts.calls} calls in ${jobs} processes${opts.includeKnown ? `, including known mismatches: ${opts.includeKnown}` : ''}`)

const results = await Promise.all(
  chunks.map(
    (seeds, j) =>
      new Promise((resolve) => {
        const env = { ...process.env, ...serverEnv }
        for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
        const child = spawn(process.execPath, [vitest, 'run', '--project', project, testFile, '--reporter=dot'], {
          cwd: root,
          env: {
            ...env,
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
  `\nparity (${project}): ${opts.seeds.length} seeds, ${failed ? `${failed} process(es) FAILED` : 'all passed'}` +
    `${failedSeeds.length ? `; failing seeds: ${[...new Set(failedSeeds)].join(', ')}` : ''} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
)
process.exit(failed ? 1 : 0)
