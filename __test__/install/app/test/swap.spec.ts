// The application code written for @kavachos/prisma, import swapped, on kavach-native.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createAdapter } from 'kavach-native'
import { afterAll, expect, it } from 'vitest'
import { runFlow } from '../src/kavach-native-swap.ts'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-swap-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

it.each([':memory:', 'file'])('runs the whole flow on %s', async (kind) => {
  const db = createAdapter(kind === 'file' ? `file:${path.join(dir, `swap-${process.pid}.db`)}` : kind)
  const report = await runFlow(db, 'swap')
  expect(report.user.name).toBe('Ada Lovelace')
  expect(report.agents.map((a) => a.id)).toEqual(['swap-agent'])
  expect(report.logs[0].parameters).toEqual({ repo: 'acme/api' })
  expect(report.trust?.score).toBe(80)
  expect(report.txResult).toBe('committed')
  expect(report.expiredSessions).toBe(1)
  await db.close()
})
