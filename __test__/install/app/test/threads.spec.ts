// The addon in several worker threads at once (whatever pool runs this file): each loads it,
// uses it, closes it and exits; the host thread goes on using it. (A worker terminated with
// queries in flight is checked apart, in a process of its own: src/terminate-in-flight.cjs.)
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { createAdapter } from 'kavach-native'
import { expect, it } from 'vitest'

const workerFile = path.resolve('test/worker.cjs')

function runWorker(n: number, hang = false) {
  const worker = new Worker(workerFile, { workerData: { n, hang } })
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
  const result = new Promise<{ n: number; email: string }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
    exited.then((code) => reject(new Error(`worker ${n} exited with code ${code} before reporting`)))
  })
  return { worker, result, exited }
}

it('loads and works in 6 worker threads started together', async () => {
  const workers = [1, 2, 3, 4, 5, 6].map((n) => runWorker(n))
  const results = await Promise.all(workers.map((w) => w.result))
  expect(results.map((r) => r.email)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `w${n}-7@example.com`))
  expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0, 0, 0, 0])
})

it('the host thread still works after its workers are gone', async () => {
  await Promise.all([9, 10].map((n) => runWorker(n).exited))
  const db = createAdapter(':memory:')
  const now = new Date()
  await db.createUser({ id: 'main', email: 'main@example.com', createdAt: now, updatedAt: now })
  expect((await db.findUserById('main'))?.email).toBe('main@example.com')
  await db.close()
})
