// Property-based fuzz over every adapter method and `transaction` (issue 11): fast-check draws,
// from fixed seeds, valid-ish and hostile arguments for each of the 173 methods (wrong types,
// missing and extra arguments, unknown keys, NaN / Infinity / huge / negative / fractional
// numbers, BigInt, out-of-range and invalid Dates also deep inside Json, long strings, NUL,
// lone surrogates, __proto__ keys, Map / Set, functions, symbols, cycles, throwing getters,
// null vs undefined) and hostile transaction options. See children/fuzz-calls.cjs.
//
// The calls run in a child process (children/fuzz-campaign.cjs), so that a call that takes the
// process down is found out and named instead of taking the test runner with it; the campaign
// then goes on after that call in a new child. Asserted: no crash; every call settles within
// 10 s, never throws synchronously, rejects only with an Error naming the method (and, for bad
// input, the field or argument); a rejected call wrote nothing; input Prisma 7 rejects is
// rejected, valid input is not; the adapter is never wedged; it still works after the campaign.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { dropFreshDatabases, freshUrl, lastCreated, provider } from './fixtures'

const SEED = 20251102
const PER_METHOD = 15 // × 173 methods
const TRANSACTIONS = 150
/** Children started after crashes at most (each crash is one failing input, and reported). */
const MAX_CHILDREN = 40

const campaignScript = path.join(__dirname, 'children', 'fuzz-campaign.cjs')
// In /dev/shm when there is one: durability is kill.test.ts's subject, not this one's.
const shm = fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').isDirectory()
const dir = fs.mkdtempSync(path.join(shm ? '/dev/shm' : os.tmpdir(), 'kavach-fuzz-'))
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await dropFreshDatabases()
})

type Event = Record<string, any>

function runChild(config: Record<string, unknown>): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [campaignScript, JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)))
    // The campaign bounds each call; this bounds a child that stops making progress at all.
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      resolve({ code, signal, stderr })
    })
  })
}

const readEvents = (file: string): Event[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .map((l) => JSON.parse(l))
    : []

it(`fuzz: every method and transaction(), ${PER_METHOD} calls each + ${TRANSACTIONS} transactions, seed ${SEED} (${provider})`, async () => {
  const file = path.join(dir, 'fuzz.db')
  const url = provider === 'sqlite' ? `file:${file}` : await freshUrl()
  const raw = provider === 'sqlite' ? { file } : provider === 'postgresql' ? { url: url.replace(/\?.*$/, ''), schema: lastCreated().name } : { url }
  const results = path.join(dir, 'results.jsonl')
  const crashes: { at: number | null; method?: string; call?: string; signal: string | null; code: number | null; stderr: string }[] = []
  let from = 0
  let children = 0
  for (;;) {
    children++
    const exit = await runChild({ url, provider, seed: SEED, perMethod: PER_METHOD, transactions: TRANSACTIONS, from, results, raw })
    const events = readEvents(results)
    if (exit.code === 0 && events[events.length - 1]?.t === 'end') break
    // The child died: the call it started last and never finished is the one that killed it.
    const done = new Set(events.filter((e) => e.t === 'done').map((e) => e.i))
    const started = events.filter((e) => e.t === 'start' && !done.has(e.i))
    const culprit = started[started.length - 1]
    const uncaught = events.filter((e) => e.t === 'uncaught').pop()
    // The panic that aborted it is the last one on stderr.
    const panic = exit.stderr.lastIndexOf('panicked at')
    const reason = uncaught?.message ?? (panic >= 0 ? exit.stderr.slice(panic, panic + 300) : exit.stderr.slice(-300))
    crashes.push({ at: culprit?.i ?? null, method: culprit?.method, call: culprit?.call, signal: exit.signal, code: exit.code, stderr: reason })
    if (!culprit || children >= MAX_CHILDREN) break
    from = culprit.i + 1
    // Mark the crash in the results, so a later run knows which call it was.
    fs.appendFileSync(results, `${JSON.stringify({ t: 'crash', i: culprit.i, signal: exit.signal, code: exit.code })}\n`)
  }

  const events = readEvents(results)
  const plan = events.find((e) => e.t === 'plan')
  const done = events.filter((e) => e.t === 'done')
  const end = events.filter((e) => e.t === 'end').pop()
  const count = (outcome: string) => done.filter((e) => e.outcome === outcome).length
  const byKind = new Map<string, Event[]>()
  for (const e of done) for (const v of e.violations) byKind.set(v.kind, [...(byKind.get(v.kind) ?? []), { call: e.call, damages: e.damages, detail: v.detail }])
  const leaked = byKind.get('write-leaked')?.length ?? 0
  console.log(
    `fuzz (${provider}): methods ${plan?.methods}, calls planned ${plan?.calls}, tried ${done.length + crashes.length}, ` +
      `resolved ${count('resolved')}, rejected ${count('rejected')}, thrown synchronously ${count('sync-throw')}, hung ${count('hang')}, ` +
      `crashes ${crashes.length}, writes leaked ${leaked}, children ${children}`,
  )
  for (const [kind, list] of byKind) {
    console.log(`  ${kind}: ${list.length}, e.g.\n${list.slice(0, 3).map((x) => `    ${JSON.stringify(x).slice(0, 700)}`).join('\n')}`)
  }
  for (const c of crashes) console.log(`  crash at call ${c.at} ${c.call}: ${c.signal ?? `exit ${c.code}`}: ${c.stderr.replace(/\s+/g, ' ').slice(0, 300)}`)

  // Soft: each kind of failure is reported, not only the first.
  // The fingerprint sees writes (else "wrote nothing" would hold trivially).
  expect.soft(events.find((e) => e.t === 'selftest')?.result).toBe('ok')
  // Every call was tried and none took the process down.
  expect.soft(plan?.methods, 'methods covered').toBe(174) // 173 + transaction
  expect.soft(done.length + crashes.length, 'calls tried').toBe(plan?.calls)
  expect.soft(crashes.map((c) => `call ${c.at} ${c.method}: ${c.signal ?? `exit ${c.code}`}`), 'calls that took the process down').toEqual([])
  const examples = (kind: string) => (byKind.get(kind) ?? []).slice(0, 5)
  expect.soft(examples('hang'), 'calls that did not settle within 10 s').toEqual([])
  expect.soft(examples('sync-throw'), 'calls that threw synchronously instead of rejecting').toEqual([])
  expect.soft(examples('not-a-promise'), 'calls that returned no promise').toEqual([])
  expect.soft(examples('not-an-error'), 'rejections that are no Error').toEqual([])
  expect.soft(examples('write-leaked'), 'rejected calls that changed rows').toEqual([])
  expect.soft(examples('adapter-wedged'), 'rejections of an adapter nobody closed').toEqual([])
  expect.soft(examples('bad-input-accepted'), 'input Prisma 7 rejects, accepted').toEqual([])
  expect.soft(examples('valid-input-rejected'), 'valid input rejected as invalid').toEqual([])
  expect.soft(examples('field-not-named'), 'validation errors that name none of the bad fields / arguments').toEqual([])
  expect.soft(examples('fn-ran-despite-bad-options'), 'transaction fn run although the options are refused').toEqual([])
  expect.soft(examples('fn-error-not-passed-through'), 'transaction rejected with another error than the one fn threw').toEqual([])
  expect.soft(examples('commit-lost'), 'transactions that resolved, but whose write is not there').toEqual([])
  expect.soft(examples('method-not-named'), 'rejections whose message does not name the method').toEqual([])
  // After the campaign the adapter still works, and close() resolves.
  expect.soft(end, 'the last child finished the campaign').toBeDefined()
  expect.soft(end?.health, 'a create + find round trip after the campaign').toBe('ok')
  expect.soft(end?.close, 'close() after the campaign').toBe('ok')
}, 240_000)
