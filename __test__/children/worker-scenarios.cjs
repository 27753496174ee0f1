// Child of worker.test.ts (a process of its own, so that a crash is an exit status, not a dead
// test runner). argv: scenario, url. Prints one JSON line with what it measured, then exits 0.
//   open-transaction: a worker_threads Worker opens a transaction on the SQLite file (timeout
//     20 s), writes in it, and is terminated while it is open; an adapter of the main thread on
//     the same file then writes: how long that takes, and whether the worker's write is there.
//   in-flight: Workers fire hundreds of calls (and transactions) and are terminated at once or
//     a little later, with calls in flight; the process must survive, and the main thread's
//     adapter still works.
'use strict'
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const index = path.resolve(__dirname, '../../index.js')
const { createAdapter } = require(index)

const [scenario, url] = process.argv.slice(2)
const T0 = new Date('2025-01-02T03:04:05.678Z')
const agent = (id) => ({ id, ownerId: 'worker-owner', name: 'a', type: 'autonomous', tokenHash: `hash-${id}`, tokenPrefix: 'kv_', createdAt: T0, updatedAt: T0 })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const within = (promise, ms) =>
  Promise.race([promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error: `${error && error.code} ${error && error.message}` })), sleep(ms).then(() => ({ hang: true }))])

function worker(code, workerData) {
  return new Worker(`const { parentPort, workerData } = require('node:worker_threads'); const { createAdapter } = require(workerData.index); ${code}`, {
    eval: true,
    workerData: { index, url, ...workerData },
  })
}
const message = (w) => new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject)))

async function openTransaction() {
  const main = createAdapter(url)
  await main.connect()
  const w = worker(
    `const db = createAdapter(workerData.url)
     db.transaction(async (tx) => {
       await tx.createAgent(workerData.agent)
       parentPort.postMessage('open')
       await new Promise(() => {}) // never ends: only terminate() ends this transaction
     }, { timeout: 20000, maxWait: 5000 }).catch((e) => parentPort.postMessage('tx failed: ' + e.message))`,
    { agent: agent('in-worker-tx') },
  )
  const first = await message(w)
  if (first !== 'open') throw new Error(`worker: ${first}`)
  await w.terminate()
  const started = Date.now()
  // Bounded at 5 s (the busy timeout): a lock held until the 20 s timeout shows as a P1008 or a hang.
  const write = await within(main.createAgent(agent('main-after-terminate')), 5000)
  const writeMs = Date.now() - started
  const leaked = await within(main.findAgentById('in-worker-tx'), 5000)
  const closed = await within(main.close(), 5000)
  return { writeMs, write: write.ok ? 'ok' : write.hang ? 'hangs' : write.error, workerWriteVisible: leaked.ok ? leaked.value !== null : leaked.error, close: closed.ok ? 'ok' : 'fails' }
}

async function inFlight() {
  const main = createAdapter(url)
  await main.connect()
  const delays = [0, 0, 1, 5, 20, 50]
  for (const [k, delay] of delays.entries()) {
    const w = worker(
      `const db = createAdapter(workerData.url)
       const T0 = new Date('2025-01-02T03:04:05.678Z')
       const agent = (id) => ({ id, ownerId: 'worker-owner', name: 'a', type: 'autonomous', tokenHash: 'hash-' + id, tokenPrefix: 'kv_', createdAt: T0, updatedAt: T0 })
       const calls = []
       for (let i = 0; i < 300; i++) {
         const id = 'w' + workerData.k + '-' + i
         calls.push(i % 3 === 0 ? db.createAgent(agent(id)) : i % 3 === 1 ? db.findAgentById(id) : db.listAgents({ ownerId: 'worker-owner' }))
         if (i % 50 === 0) calls.push(db.transaction(async (tx) => { await tx.createAgent(agent(id + '-tx')); await tx.findAgentById(id) }))
       }
       Promise.allSettled(calls)
       parentPort.postMessage('busy')`,
      { k },
    )
    await message(w)
    if (delay) await sleep(delay)
    await w.terminate()
  }
  // A worker terminated before its adapter even connected.
  const early = worker(`const db = createAdapter(workerData.url); db.findAgentById('x'); parentPort.postMessage('busy')`, {})
  await message(early)
  await early.terminate()
  const started = Date.now()
  const write = await within(main.createAgent(agent('main-after-workers')), 5000)
  const read = await within(main.findAgentById('main-after-workers'), 5000)
  const closed = await within(main.close(), 5000)
  return {
    workers: delays.length + 1,
    writeMs: Date.now() - started,
    write: write.ok ? 'ok' : write.hang ? 'hangs' : write.error,
    read: read.ok ? (read.value && read.value.id) : read.hang ? 'hangs' : read.error,
    close: closed.ok ? 'ok' : 'fails',
  }
}

;(scenario === 'open-transaction' ? openTransaction() : inFlight())
  .then((result) => {
    console.log(JSON.stringify(result))
    process.exit(0)
  })
  .catch((error) => {
    console.log(JSON.stringify({ failed: String(error && error.stack) }))
    process.exit(1)
  })
