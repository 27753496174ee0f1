// worker_threads Workers that go away (issue 11, item 4): a Worker terminated while its
// transaction is open must not keep the SQLite write lock until that transaction's own timeout
// (20 s here): another adapter on the same file writes within 2 s, and the worker's write is
// rolled back. A Worker terminated with calls in flight does not crash the process. Each
// scenario runs in a process of its own (children/worker-scenarios.cjs).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { dropFreshDatabases, freshUrl, onServer, provider } from './fixtures'

const script = path.join(__dirname, 'children', 'worker-scenarios.cjs')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-worker-'))
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await dropFreshDatabases()
})

function run(scenario: string, url: string) {
  const child = spawnSync(process.execPath, [script, scenario, url], { encoding: 'utf8', timeout: 60_000 })
  const line = child.stdout.trim().split('\n').pop() ?? ''
  let result: any
  try {
    result = JSON.parse(line)
  } catch {
    result = { stdout: child.stdout.slice(-500) }
  }
  return { status: child.status, signal: child.signal, stderr: child.stderr.slice(-1500), result }
}

it.skipIf(onServer)('a Worker terminated while its transaction is open releases the SQLite write lock at once', () => {
  const { status, signal, stderr, result } = run('open-transaction', `file:${path.join(dir, 'open-tx.db')}`)
  console.log(`worker (open transaction): ${JSON.stringify(result)}, exit ${signal ?? status}`)
  expect({ status, signal }, `the process died: ${stderr}`).toEqual({ status: 0, signal: null })
  expect(result.write, 'a write of the main thread after terminate()').toBe('ok')
  expect(result.writeMs, 'ms the main thread waited for the lock').toBeLessThan(2000)
  expect(result.workerWriteVisible, 'the terminated worker\'s uncommitted write').toBe(false)
  expect(result.close).toBe('ok')
}, 60_000)

it(`Workers terminated with calls in flight do not crash the process (${provider})`, async () => {
  const url = provider === 'sqlite' ? `file:${path.join(dir, 'in-flight.db')}` : await freshUrl()
  const { status, signal, stderr, result } = run('in-flight', url)
  console.log(`worker (in flight, ${provider}): ${JSON.stringify(result)}, exit ${signal ?? status}`)
  expect({ status, signal }, `the process died: ${stderr}`).toEqual({ status: 0, signal: null })
  expect(result.write).toBe('ok')
  expect(result.read).toBe('main-after-workers')
  expect(result.writeMs, 'ms for a write and a read after the workers went').toBeLessThan(2000)
  expect(result.close).toBe('ok')
}, 60_000)
