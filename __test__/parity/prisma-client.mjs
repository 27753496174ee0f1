// Generates the Prisma 7 client the parity tests use as the oracle, from the repo's own
// schema.prisma, into the gitignored __test__/parity/.prisma-client/client.
// The schema is copied with an `output` line added to the generator; nothing else changes.
// Regeneration is skipped while the schema and the installed prisma version are unchanged.
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

export function ensurePrismaClient({ quiet = true } = {}) {
  const source = fs.readFileSync(path.join(repoRoot, 'schema.prisma'), 'utf8')
  const generator = /generator\s+client\s*\{[^}]*\}/
  if (!generator.test(source)) throw new Error('schema.prisma: no `generator client { ... }` block')
  const schema = source.replace(generator, 'generator client {\n  provider = "prisma-client-js"\n  output   = "./client"\n}')
  const stamp = createHash('sha256').update(schema).update(prismaVersion()).digest('hex')
  const stampFile = path.join(outDir, 'stamp')
  if (fs.existsSync(path.join(clientDir, 'index.js')) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
    return clientDir
  }
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  const schemaFile = path.join(outDir, 'schema.prisma')
  fs.writeFileSync(schemaFile, schema)
  // The schema engine is never needed to generate a client; /bin/true keeps prisma from
  // trying to download one.
  execFileSync(process.execPath, [path.join(repoRoot, 'node_modules/prisma/build/index.js'), 'generate', '--schema', schemaFile], {
    cwd: repoRoot,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    stdio: quiet ? 'pipe' : 'inherit',
  })
  fs.writeFileSync(stampFile, stamp)
  return clientDir
}
