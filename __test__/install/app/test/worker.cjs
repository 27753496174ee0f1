// One worker thread: load the addon, do a round trip, report back.
const { parentPort, workerData } = require('node:worker_threads')
const { createAdapter } = require('kavach-native')

async function main() {
  const db = createAdapter(':memory:')
  const now = new Date()
  for (let i = 0; i < 20; i++) {
    await db.createUser({ id: `u${i}`, email: `w${workerData.n}-${i}@example.com`, createdAt: now, updatedAt: now })
  }
  const user = await db.findUserById('u7')
  if (workerData.hang) {
    // Leave queries in flight and let the parent terminate the thread.
    parentPort.postMessage({ n: workerData.n, email: user.email })
    for (;;) await db.findUserById('u1')
  }
  await db.close()
  parentPort.postMessage({ n: workerData.n, email: user.email })
}
main().catch((error) => {
  throw error
})
