// vitest globalSetup: make sure the Prisma 7 clients exist before any test runs
// (SQLite always; PostgreSQL / MySQL when their server suites are enabled).
import { ensurePrismaClient } from './prisma-client.mjs'

// Also the app-schema clients (the KavachOS models plus one of the app's own) that
// __test__/client.test.ts runs kavach-native on.
export default function setup() {
  ensurePrismaClient()
  ensurePrismaClient({ app: true })
  if (process.env.KAVACH_TEST_PG_URL) {
    ensurePrismaClient({ provider: 'postgresql' })
    ensurePrismaClient({ provider: 'postgresql', app: true })
  }
  if (process.env.KAVACH_TEST_MYSQL_URL) {
    ensurePrismaClient({ provider: 'mysql' })
    ensurePrismaClient({ provider: 'mysql', app: true })
  }
}
