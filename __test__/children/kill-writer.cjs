// Child of kill.test.ts: writes to the database at argv[2] in bursts until it is killed,
// and prints each id on stdout only after its promise resolved (one write(2) per line):
//   S <id>  a single createAgent
//   T <id>  a transaction: the agent <id> and the permissions <id>-p1, <id>-p2 (order varies)
//   R <id>  a transaction that wrote the agent <id> and <id>-p1, then threw: rolled back
// argv: url, prefix (unique per child), seed.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { createAdapter } = require(path.resolve(__dirname, '../../index.js'))

const [url, prefix, seedText] = process.argv.slice(2)
let seed = Number(seedText) >>> 0
const random = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const T0 = new Date('2025-01-02T03:04:05.678Z')
const agent = (id) => ({ id, ownerId: 'kill-owner', name: 'agent', type: 'autonomous', tokenHash: `hash-${id}`, tokenPrefix: 'kv_', createdAt: T0, updatedAt: T0 })
const permission = (id, agentId) => ({ id, agentId, resource: 'mcp:x', actions: ['read'], createdAt: T0 })
const say = (line) => fs.writeSync(1, `${line}\n`)

const db = createAdapter(url)
let n = 0

async function single() {
  const id = `${prefix}-s${n++}`
  await db.createAgent(agent(id))
  say(`S ${id}`)
}

async function transaction() {
  const id = `${prefix}-t${n++}`
  const agentFirst = random() < 0.5
  await db.transaction(async (tx) => {
    if (agentFirst) await tx.createAgent(agent(id))
    await tx.createPermission(permission(`${id}-p1`, id))
    await tx.createPermission(permission(`${id}-p2`, id))
    if (!agentFirst) await tx.createAgent(agent(id))
  })
  say(`T ${id}`)
}

async function rolledBack() {
  const id = `${prefix}-r${n++}`
  const error = await db
    .transaction(async (tx) => {
      await tx.createAgent(agent(id))
      await tx.createPermission(permission(`${id}-p1`, id))
      throw new Error('roll back')
    })
    .catch((e) => e)
  if (error && error.message === 'roll back') say(`R ${id}`)
  else throw error ?? new Error(`the transaction of ${id} committed although fn threw`)
}

async function main() {
  await db.connect()
  say('READY')
  for (;;) {
    const burst = 1 + Math.floor(random() * 8)
    const ops = Array.from({ length: burst }, () => {
      const r = random()
      return r < 0.45 ? single() : r < 0.9 ? transaction() : rolledBack()
    })
    const settled = await Promise.allSettled(ops)
    for (const s of settled) if (s.status === 'rejected') fs.writeSync(2, `E ${s.reason && s.reason.message}\n`)
  }
}

main().catch((error) => {
  fs.writeSync(2, `FATAL ${error && error.stack}\n`)
  process.exit(1)
})
