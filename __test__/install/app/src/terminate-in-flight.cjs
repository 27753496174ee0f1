// A worker thread terminated while its adapter calls are in flight (what a test runner does
// to a worker on a timeout or a cancelled run): the process must survive it.
// node src/terminate-in-flight.cjs [rounds] [workers]; prints 'survived' and exits 0.
const { Worker, isMainThread, parentPort } = require('node:worker_threads')

if (isMainThread) {
  const rounds = Number(process.argv[2] || 10)
  const count = Number(process.argv[3] || 4)
  ;(async () => {
    for (let round = 0; round < rounds; round++) {
      const workers = Array.from({ length: count }, () => new Worker(__filename))
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise((resolve, reject) => {
              worker.once('message', () => setTimeout(() => worker.terminate(), 5))
              worker.once('error', reject)
              worker.once('exit', resolve)
            }),
        ),
      )
    }
    console.log(`survived ${rounds} rounds of ${count} workers terminated mid-query`)
  })().catch((error) => {
    console.error(error)
    process.exit(1)
  })
} else {
  const { createAdapter } = require('kavach-native')
  ;(async () => {
    const db = createAdapter(':memory:')
    const now = new Date()
    await db.createUser({ id: 'u', email: 'u@example.com', createdAt: now, updatedAt: now })
    parentPort.postMessage('busy')
    for (;;) await db.findUserById('u')
  })()
}
