// vitest globalSetup: make sure the Prisma 7 oracle client exists before any parity test runs.
import { ensurePrismaClient } from './prisma-client.mjs'

export default function setup() {
  ensurePrismaClient()
}
