// vitest globalSetup: make sure the Prisma 7 oracle clients exist before any parity test runs
// (SQLite always; PostgreSQL / MySQL when their server suites are enabled).
import { ensurePrismaClient } from './prisma-client.mjs'

export default function setup() {
  ensurePrismaClient()
  if (process.env.KAVACH_TEST_PG_URL) ensurePrismaClient({ provider: 'postgresql' })
  if (process.env.KAVACH_TEST_MYSQL_URL) ensurePrismaClient({ provider: 'mysql' })
}
