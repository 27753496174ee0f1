// The project's own Prisma client and kavach-native on the same SQLite file: rows written by
// one are read back, field for field, by the other. One library holds the file at a time.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { PrismaClient } from '@prisma/client'
import { createAdapter } from 'kavach-native'
import { afterAll, expect, it } from 'vitest'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-shared-'))
const file = path.join(dir, 'dev.db')
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const prisma = () => new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) })

it('kavach-native push creates the KavachOS tables in the project database', () => {
  const out = execFileSync(path.resolve('node_modules/.bin/kavach-native'), ['push', '--url', `file:${file}`], { encoding: 'utf8' })
  expect(out).toMatch(/^Created 39 tables: kavach_users, /)
  const again = execFileSync(path.resolve('node_modules/.bin/kavach-native'), ['push', '--url', `file:${file}`], { encoding: 'utf8' })
  expect(again).toMatch(/Nothing to create/)
})

it('Prisma writes, kavach-native reads; kavach-native writes, Prisma reads', async () => {
  const now = new Date('2026-01-02T03:04:05.678Z')

  // 1. The app's Prisma client: its own table and a KavachOS user.
  const p1 = prisma()
  await p1.$executeRawUnsafe(
    'CREATE TABLE "posts" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "title" TEXT NOT NULL, "author_id" TEXT NOT NULL, "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)',
  )
  const prismaUser = await p1.kavachUser.create({
    data: { id: 'u1', email: 'ada@example.com', name: 'Ada', metadata: { plan: 'pro', seats: 3 }, createdAt: now, updatedAt: now },
  })
  await p1.post.create({ data: { title: 'hello', authorId: 'u1' } })
  await p1.$disconnect()

  // 2. kavach-native reads it and writes an agent and an audit log.
  const db = createAdapter(`file:${file}`)
  expect(await db.findUserById('u1')).toEqual(prismaUser)
  const agent = await db.createAgent({
    id: 'a1', ownerId: 'u1', name: 'bot', type: 'autonomous', tokenHash: 'h1', tokenPrefix: 'kv_',
    metadata: { nested: { ok: true } }, expiresAt: null, createdAt: now, updatedAt: now,
  })
  const log = await db.createAuditLog({
    id: 'l1', agentId: 'a1', userId: 'u1', action: 'execute', resource: 'mcp:github:*',
    parameters: { repo: 'acme/api' }, result: 'allowed', durationMs: 7, timestamp: now,
  })
  await db.close()

  // 3. Prisma reads what kavach-native wrote; its own rows are untouched.
  const p2 = prisma()
  expect(await p2.kavachAgent.findUnique({ where: { id: 'a1' } })).toEqual(agent)
  expect(await p2.kavachAuditLog.findUnique({ where: { id: 'l1' } })).toEqual(log)
  expect(await p2.post.count()).toBe(1)
  await p2.kavachUser.update({ where: { id: 'u1' }, data: { banned: true } })
  await p2.$disconnect()

  const db2 = createAdapter(`file:${file}`)
  expect((await db2.findUserById('u1'))?.banned).toBe(true)
  expect(await db2.queryAuditLogs({ agentId: 'a1' })).toEqual([log])
  await db2.close()
})
