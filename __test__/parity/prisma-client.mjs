// Generates the Prisma 7 client the parity tests use as the oracle, from the repo's own
// schema.prisma, into the gitignored __test__/parity/.prisma-client/client.
// The schema is copied with an `output` line added to the generator; nothing else changes.
// Regeneration is skipped while the schema and the installed prisma version are unchanged.
// For the server parity tests, ensurePrismaClient({ provider: 'postgresql' | 'mysql' }) makes one
// client per provider, from a copy whose datasource provider is changed too, in
// __test__/parity/.prisma-client/<provider>/client.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '../..')
export const outDir = path.join(here, '.prisma-client')
export const clientDir = path.join(outDir, 'client')

function prismaVersion() {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules/prisma/package.json'), 'utf8')).version
}

export const SERVER_PROVIDERS = ['postgresql', 'mysql']

/**
 * The app's own model in the app schema (`app: true`): the KavachOS models plus this, as an
 * app that swaps @kavachos/prisma for kavach-native has them in one schema.prisma.
 */
export const APP_MODEL = `
model Subscription {
  id        String   @id
  userId    String   @map("user_id")
  plan      String
  createdAt DateTime @map("created_at")

  @@map("app_subscriptions")
}
`

/** The DDL of APP_MODEL's table, as Prisma's migrations write it for `provider`. */
export function appModelDdl(provider) {
  if (provider === 'postgresql') {
    return 'CREATE TABLE "app_subscriptions" ("id" TEXT NOT NULL, "user_id" TEXT NOT NULL, "plan" TEXT NOT NULL, "created_at" TIMESTAMP(3) NOT NULL, CONSTRAINT "app_subscriptions_pkey" PRIMARY KEY ("id"))'
  }
  if (provider === 'mysql') {
    return 'CREATE TABLE `app_subscriptions` (`id` VARCHAR(191) NOT NULL, `user_id` VARCHAR(191) NOT NULL, `plan` VARCHAR(191) NOT NULL, `created_at` DATETIME(3) NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
  }
  return 'CREATE TABLE "app_subscriptions" ("id" TEXT NOT NULL PRIMARY KEY, "user_id" TEXT NOT NULL, "plan" TEXT NOT NULL, "created_at" DATETIME NOT NULL)'
}

/** Where the client for `provider` lives ('sqlite': the differential test's own). */
export function clientDirFor(provider = 'sqlite', { app = false } = {}) {
  if (app) return path.join(outDir, `app-${provider}`, 'client')
  return provider === 'sqlite' ? clientDir : path.join(outDir, provider, 'client')
}

export function ensurePrismaClient({ quiet = true, provider = 'sqlite', app = false } = {}) {
  if (provider !== 'sqlite' && !SERVER_PROVIDERS.includes(provider)) throw new Error(`ensurePrismaClient: unknown provider '${provider}'`)
  const source = fs.readFileSync(path.join(repoRoot, 'schema.prisma'), 'utf8')
  const generator = /generator\s+client\s*\{[^}]*\}/
  if (!generator.test(source)) throw new Error('schema.prisma: no `generator client { ... }` block')
  let schema = source.replace(generator, 'generator client {\n  provider = "prisma-client-js"\n  output   = "./client"\n}')
  if (provider !== 'sqlite') {
    const datasource = /datasource\s+db\s*\{[^}]*\}/
    if (!datasource.test(schema)) throw new Error('schema.prisma: no `datasource db { ... }` block')
    schema = schema.replace(datasource, `datasource db {\n  provider = "${provider}"\n}`)
  }
  if (app) schema += APP_MODEL
  const dir = app ? path.join(outDir, `app-${provider}`) : provider === 'sqlite' ? outDir : path.join(outDir, provider)
  const target = clientDirFor(provider, { app })
  const stamp = createHash('sha256').update(schema).update(prismaVersion()).digest('hex')
  const stampFile = path.join(dir, 'stamp')
  if (fs.existsSync(path.join(target, 'index.js')) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
    return target
  }
  // Only this client's files: the others live inside the SQLite one's directory.
  for (const f of [target, stampFile]) fs.rmSync(f, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const schemaFile = path.join(dir, 'schema.prisma')
  fs.writeFileSync(schemaFile, schema)
  // The schema engine is never needed to generate a client; /bin/true keeps prisma from
  // trying to download one.
  execFileSync(process.execPath, [path.join(repoRoot, 'node_modules/prisma/build/index.js'), 'generate', '--schema', schemaFile], {
    cwd: repoRoot,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    stdio: quiet ? 'pipe' : 'inherit',
  })
  fs.writeFileSync(stampFile, stamp)
  return target
}
