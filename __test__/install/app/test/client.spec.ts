// The KavachOS docs' own example, unchanged but for the import: kavach-native on the app's
// Prisma client inside the app's $transaction (issue #12), and the app's usual error
// handling — `instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002'` — passing
// as it did with @kavachos/prisma.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { Prisma, PrismaClient } from '@prisma/client'
import { createAdapter as createPrismaAdapter } from 'kavach-native'
import { afterAll, beforeAll, expect, it } from 'vitest'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-client-'))
const file = path.join(dir, 'dev.db')
let prisma: PrismaClient

beforeAll(async () => {
  execFileSync(path.resolve('node_modules/.bin/kavach-native'), ['push', '--url', `file:${file}`])
  prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) })
  await prisma.$executeRawUnsafe(
    'CREATE TABLE "posts" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "title" TEXT NOT NULL, "author_id" TEXT NOT NULL, "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)',
  )
})
afterAll(async () => {
  await prisma.$disconnect()
  fs.rmSync(dir, { recursive: true, force: true })
})

const now = new Date('2026-01-02T03:04:05.678Z')

it("runs the docs' example: kavach's writes and the app's commit and roll back together", async () => {
  await prisma.$transaction(async (tx) => {
    const kavach = createPrismaAdapter(tx)
    await kavach.createAgent({ id: 'a1', ownerId: 'u1', name: 'bot', type: 'autonomous', tokenHash: 'h1', tokenPrefix: 'kv_', createdAt: now, updatedAt: now })
    await tx.post.create({ data: { title: 'hello', authorId: 'u1' } })
  })
  const boom = new Error('boom')
  await expect(
    prisma.$transaction(async (tx) => {
      const kavach = createPrismaAdapter(tx)
      await kavach.createAgent({ id: 'a2', ownerId: 'u1', name: 'bot', type: 'autonomous', tokenHash: 'h2', tokenPrefix: 'kv_', createdAt: now, updatedAt: now })
      await tx.post.create({ data: { title: 'gone', authorId: 'u1' } })
      throw boom
    }),
  ).rejects.toBe(boom)
  const kavach = createPrismaAdapter(prisma)
  expect((await kavach.findAgentById('a1'))?.id).toBe('a1')
  expect(await kavach.findAgentById('a2')).toBeNull()
  expect(await prisma.post.count()).toBe(1)
})

it("the app's P2002 handler works unchanged", async () => {
  const kavach = createPrismaAdapter(prisma)
  const user = { id: 'u9', email: 'dup@example.com', createdAt: now, updatedAt: now }
  await kavach.createUser(user)
  let handled = false
  try {
    await kavach.createUser({ ...user, id: 'u10' })
  } catch (e) {
    if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') handled = true
    else throw e
  }
  expect(handled).toBe(true)
})
