// End-to-end install test (npm run test:install): what `pnpm add kavach-native` does to an
// existing Prisma 7 project, from the packed tarballs, with nothing from this repo's
// node_modules. Needs the built addon (`npm run build`); takes a minute or two.
//
//  1. pack the main package and the host's platform package (scripts/pack.mjs);
//  2. the main package alone (no platform package): require() names the missing package;
//  3. a fresh project using Prisma 7 (schema = KavachOS models + a model of its own,
//     client generated), installed with pnpm from the registry;
//  4. `pnpm add` our tarball; the platform package comes through optionalDependencies;
//  5. in that project: require() from CommonJS (Prisma's error classes are the project's own),
//     import from ESM; tsc passes on code using
//     every method and type (also code written for @kavachos/prisma, import swapped) and
//     fails on each misuse; the project's vitest suite passes with pool forks and threads.
//
// KEEP_INSTALL_TEST=1 keeps the temporary folder (its path is printed).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixture = path.join(root, '__test__/install/app')
const PNPM = 'pnpm@9.15.9'
// Versions of the existing project's own dependencies: the ones this repo tests against.
const devVersion = (name) => JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-install-'))
const logs = path.join(work, 'logs')
fs.mkdirSync(logs)
const started = Date.now()
let passed = 0
let countCalls = 0
let kavachModels = ''
let declaredMethods = []
let failed = 0

function say(line) {
  process.stdout.write(`${line}\n`)
}

/** Runs a command; its output goes to a log file, shown only when it fails (unless `show`). */
function run(name, command, args, { cwd = work, env = {}, expectFailure = false, show = false } = {}) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env },
    maxBuffer: 64 * 1024 * 1024,
  })
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`
  const logFile = path.join(logs, `${name.replace(/[^a-z0-9]+/gi, '-')}.log`)
  fs.writeFileSync(logFile, `$ ${command} ${args.join(' ')}\n${output}`)
  const ok = expectFailure ? result.status !== 0 && result.status !== null : result.status === 0
  if ((!ok || show) && output.trim()) process.stdout.write(output.trimEnd().replace(/^/gm, '    | ') + '\n')
  return { ok, status: result.status, signal: result.signal, stdout: result.stdout ?? '', stderr: result.stderr ?? '', output, logFile }
}

function step(name, fn) {
  const t = Date.now()
  let error = null
  try {
    fn()
  } catch (e) {
    error = e
  }
  const seconds = ((Date.now() - t) / 1000).toFixed(1)
  if (error) {
    failed++
    say(`FAIL ${name} (${seconds}s): ${error.message}`)
  } else {
    passed++
    say(`ok   ${name} (${seconds}s)`)
  }
  return !error
}

function must(result, what) {
  if (!result.ok) throw new Error(`${what} (exit ${result.status}; log ${result.logFile})`)
  return result
}

function expect(condition, what) {
  if (!condition) throw new Error(what)
}

function writeJson(file, value) {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`)
}

function finish() {
  const seconds = ((Date.now() - started) / 1000).toFixed(0)
  say(`install test: ${passed} passed, ${failed} failed in ${seconds}s`)
  say(`${passed} passed, ${failed} failed`)
  if (process.env.KEEP_INSTALL_TEST === '1' || failed > 0) say(`kept: ${work}`)
  else fs.rmSync(work, { recursive: true, force: true })
  process.exit(failed > 0 ? 1 : 0)
}

// ---------------------------------------------------------------------------------------
const tarballs = path.join(work, 'tarballs')
let mainTgz
let platformTgz
const platformPackage = 'kavach-native-linux-x64-gnu'

if (process.platform !== 'linux' || process.arch !== 'x64') {
  say(`install test: runs on linux-x64 (glibc) only; this is ${process.platform}-${process.arch}`)
  process.exit(1)
}

const packed = step('pack the main package and the linux-x64-gnu package', () => {
  const r = must(run('pack', process.execPath, [path.join(root, 'scripts/pack.mjs'), '--out', tarballs]), 'scripts/pack.mjs failed')
  const files = r.stdout.trim().split('\n')
  mainTgz = files.find((f) => path.basename(f).startsWith('kavach-native-0'))
  platformTgz = files.find((f) => path.basename(f).startsWith(`${platformPackage}-`))
  expect(mainTgz && platformTgz, `expected both tarballs, got ${files.join(', ')}`)
  say(`     ${path.basename(mainTgz)} ${(fs.statSync(mainTgz).size / 1e3).toFixed(0)} kB, ${path.basename(platformTgz)} ${(fs.statSync(platformTgz).size / 1e6).toFixed(1)} MB`)
})
if (!packed) finish()

step('without its platform package, require() names the missing package', () => {
  const bare = path.join(work, 'bare')
  const pkgDir = path.join(bare, 'node_modules/kavach-native')
  fs.mkdirSync(pkgDir, { recursive: true })
  execFileSync('tar', ['-xzf', mainTgz, '-C', pkgDir, '--strip-components=1'])
  const r = run('bare-require', process.execPath, ['-e', "require('kavach-native')"], { cwd: bare, expectFailure: true })
  must(r, 'require() should have failed')
  expect(r.stderr.includes(`"${platformPackage}" is not installed`), `the error does not name ${platformPackage}:\n${r.stderr}`)
  expect(r.stderr.includes('optional'), 'the error does not mention optional dependencies')
  say(`     ${r.stderr.split('\n').find((l) => l.includes('kavach-native:'))?.trim()}`)
})

// ---------------------------------------------------------------------------------------
// The existing project: Prisma 7 with the KavachOS models, before kavach-native.
const app = path.join(work, 'app')
const pnpmHome = path.join(work, 'pnpm')
const pnpmBin = path.join(pnpmHome, 'node_modules/pnpm/bin/pnpm.cjs')
const pnpm = (name, args, options) => run(name, process.execPath, [pnpmBin, ...args], { cwd: app, ...options })

const projectReady = step(`existing Prisma 7 project: ${PNPM} install, prisma generate`, () => {
  must(run('install-pnpm', 'npm', ['install', '--prefix', pnpmHome, '--no-save', '--no-audit', '--no-fund', PNPM]), `npm install ${PNPM}`)
  fs.cpSync(fixture, app, { recursive: true })
  writeJson(path.join(app, 'package.json'), {
    name: 'existing-prisma-app',
    private: true,
    type: 'module',
    dependencies: {
      '@prisma/client': devVersion('@prisma/client'),
      '@prisma/adapter-better-sqlite3': devVersion('@prisma/adapter-better-sqlite3'),
      '@kavachos/prisma': '3.0.2',
      'better-sqlite3': devVersion('better-sqlite3'),
    },
    devDependencies: {
      prisma: devVersion('prisma'),
      typescript: '~5.9.0',
      vitest: devVersion('vitest'),
    },
    pnpm: {
      // pnpm runs no dependency's build script unless listed: better-sqlite3 compiles its addon.
      onlyBuiltDependencies: ['better-sqlite3'],
      // @kavachos/prisma's peer kavachos@0.4.2 is not on the registry.
      peerDependencyRules: { ignoreMissing: ['kavachos'] },
      // Until the platform packages are published, ours comes from its tarball.
      overrides: { [platformPackage]: `file:${platformTgz}` },
    },
  })
  // As legacy-peer-deps for npm: peers are not installed for you, missing ones do not fail.
  fs.writeFileSync(path.join(app, '.npmrc'), 'auto-install-peers=false\nstrict-peer-dependencies=false\n')
  const schema = fs.readFileSync(path.join(root, 'schema.prisma'), 'utf8')
  kavachModels = schema.slice(schema.search(/^(model|enum) /m))
  fs.mkdirSync(path.join(app, 'prisma'))
  fs.writeFileSync(
    path.join(app, 'prisma/schema.prisma'),
    `generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "sqlite"
}

// The app's own model.
model Post {
  id        Int      @id @default(autoincrement())
  title     String
  authorId  String   @map("author_id")
  createdAt DateTime @default(now()) @map("created_at")

  @@map("posts")
}

// KavachOS models, from kavach-native's schema.prisma.
${kavachModels}`,
  )
  must(pnpm('pnpm-install', ['install']), 'pnpm install failed')
  // The schema engine is not needed to generate a client; /bin/true keeps prisma from fetching one.
  must(run('prisma-generate', 'npx', ['prisma', 'generate'], { cwd: app, env: { PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true', CHECKPOINT_DISABLE: '1' } }), 'prisma generate failed')
})
if (!projectReady) finish()

const added = step('pnpm add kavach-native (the tarball)', () => {
  must(pnpm('pnpm-add', ['add', mainTgz]), 'pnpm add failed')
  const installed = fs.realpathSync(path.join(app, 'node_modules/kavach-native'))
  const platformDir = path.join(installed, '..', platformPackage)
  expect(fs.existsSync(path.join(platformDir, `kavach-native.linux-x64-gnu.node`)), `${platformPackage} was not installed next to kavach-native`)
  expect(!fs.readdirSync(installed).some((f) => f.endsWith('.node')), 'the main package must not carry a .node')
  const shipped = fs.readFileSync(path.join(installed, 'schema.prisma'), 'utf8')
  expect(shipped === fs.readFileSync(path.join(root, 'schema.prisma'), 'utf8'), 'shipped schema.prisma differs from the repo')
  expect(fs.existsSync(path.join(app, 'node_modules/.bin/kavach-native')), 'no kavach-native bin linked')
  // The generated Prisma client survives the add.
  must(run('client-after-add', process.execPath, ['-e', "const { PrismaClient } = require('@prisma/client'); if (typeof PrismaClient !== 'function') process.exit(1)"], { cwd: app }), 'the generated Prisma client is gone after pnpm add')
})
if (!added) finish()

step("require('kavach-native') from CommonJS", () => {
  const r = must(run('cjs', process.execPath, ['src/check.cjs'], { cwd: app }), 'src/check.cjs failed')
  say(`     ${r.stdout.trim().replace(app, '<app>')}`)
})

step("import { createAdapter } from 'kavach-native' in ESM", () => {
  const r = must(run('esm', process.execPath, ['src/check.mjs'], { cwd: app }), 'src/check.mjs failed')
  say(`     ${r.stdout.trim()}`)
})

step('the CLI through the installed bin', () => {
  const bin = path.join(app, 'node_modules/.bin/kavach-native')
  const r = must(run('cli-schema', bin, ['schema', '--provider', 'postgresql'], { cwd: app }), 'kavach-native schema failed')
  expect(r.stdout.startsWith('CREATE TABLE IF NOT EXISTS "kavach_users"'), 'unexpected schema output')
  const prismaModels = must(run('cli-schema-prisma', bin, ['schema', '--prisma'], { cwd: app }), 'kavach-native schema --prisma failed').stdout
  expect(prismaModels.trimEnd().endsWith(kavachModels.trimEnd()) && !/^(generator|datasource) /m.test(prismaModels), 'schema --prisma does not print the models the project merged')
  const bad = run('cli-bad', bin, ['push', '--url', 'postgresql://u:secret@127.0.0.1:1/db?pool_timeout=1'], { cwd: app, expectFailure: true })
  must(bad, 'push to an unreachable server should fail')
  expect(bad.stderr.trim().split('\n').length === 1 && !bad.stderr.includes('secret'), `expected one line without the password: ${bad.stderr}`)
})

// ---------------------------------------------------------------------------------------
// Types.
const tsc = path.join(app, 'node_modules/typescript/bin/tsc')
const baseTsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: [],
    lib: ['ES2022'],
  },
}

step('tsc --noEmit: every method and type; @kavachos/prisma code, import swapped', () => {
  // Code written for @kavachos/prisma; the only change for kavach-native is the module name.
  const refSource = fs.readFileSync(path.join(app, 'src/kavach-ref.ts'), 'utf8')
  fs.writeFileSync(path.join(app, 'src/kavach-native-swap.ts'), refSource.replaceAll("from '@kavachos/prisma'", "from 'kavach-native'"))
  const refDts = fs.readFileSync(path.join(app, 'node_modules/@kavachos/prisma/dist/index.d.ts'), 'utf8')
  const refAdapter = /interface KavachPrismaAdapter \{([\s\S]*?)\n\}/.exec(refDts)[1]
  const refMethods = [...refAdapter.matchAll(/^ {4}(\w+)(?:<\w+>)?\(/gm)].map((m) => m[1])
  const unused = refMethods.filter((m) => !new RegExp(`\\b(db|tx)\\.${m}\\(`).test(refSource))
  expect(refMethods.length > 60 && unused.length === 0, `src/kavach-ref.ts does not call: ${unused.join(', ')}`)
  fs.writeFileSync(path.join(app, 'src/every-method.ts'), everyMethodSource(fs.readFileSync(path.join(app, 'node_modules/kavach-native/index.d.ts'), 'utf8')))
  writeJson(path.join(app, 'tsconfig.json'), { ...baseTsconfig, include: ['src/*.ts'], exclude: ['src/compat.ts'] })
  must(run('tsc', process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }), 'tsc reported errors')
  const runtime = JSON.parse(must(run('method-names', process.execPath, ['-p', "JSON.stringify(require('kavach-native').methodNames())"], { cwd: app }), 'methodNames()').stdout)
  const notDeclared = runtime.filter((m) => !declaredMethods.includes(m))
  const notAtRuntime = declaredMethods.filter((m) => !runtime.includes(m))
  expect(notDeclared.length === 0 && notAtRuntime.length === 0, `index.d.ts and methodNames() differ: only at run time: ${notDeclared.join(', ')}; only in the types: ${notAtRuntime.join(', ')}`)
  say(`     ${refMethods.length} @kavachos/prisma methods called through both imports; every-method.ts calls all ${countCalls} kavach-native methods`)
})

step("tsc --noEmit: @kavachos/prisma's types and ours, assignable both ways (src/compat.ts)", () => {
  writeJson(path.join(app, 'tsconfig.compat.json'), { ...baseTsconfig, include: [], files: ['src/compat.ts'] })
  const r = run('tsc-compat', process.execPath, [tsc, '-p', 'tsconfig.compat.json'], { cwd: app })
  const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l))
  must(r, `${errors.length} type error(s): ${errors.map((l) => l.replace(/import\("[^"]*"(, \{ with: \{[^}]*\} \})?\)\./g, '')).join(' | ').slice(0, 600)}`)
})

const misuses = {
  'wrong-argument-type': 'TS2345',
  'missing-required-field': 'TS2345',
  'unknown-property': 'TS2353',
  'nullable-result': 'TS18047',
  'unknown-method': 'TS2339',
}
step(`tsc fails on each misuse (${Object.keys(misuses).join(', ')})`, () => {
  for (const [name, code] of Object.entries(misuses)) {
    const config = path.join(app, `tsconfig.misuse-${name}.json`)
    writeJson(config, { ...baseTsconfig, include: [], files: [`src/misuse/${name}.ts`] })
    const r = must(run(`tsc-misuse-${name}`, process.execPath, [tsc, '-p', config], { cwd: app, expectFailure: true }), `tsc accepted src/misuse/${name}.ts`)
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l))
    expect(errors.length >= 1 && errors.every((l) => l.startsWith(`src/misuse/${name}.ts`) && l.includes(code)), `src/misuse/${name}.ts: expected only ${code}, got:\n${r.stdout}`)
  }
  const sample = fs.readFileSync(path.join(logs, 'tsc-misuse-wrong-argument-type.log'), 'utf8').split('\n').find((l) => l.includes('error TS'))
  say(`     e.g. ${sample}`)
})

// ---------------------------------------------------------------------------------------
for (const pool of ['forks', 'threads']) {
  step(`vitest run --pool ${pool} (8 files, 4 workers at once; worker_threads inside)`, () => {
    const r = run(`vitest-${pool}`, process.execPath, [path.join(app, 'node_modules/vitest/vitest.mjs'), 'run', '--pool', pool], { cwd: app, env: { CI: '1' } })
    const summary = r.output.split('\n').filter((l) => /^\s*(Test Files|Tests)\s/.test(l)).map((l) => l.trim())
    if (!r.ok) {
      throw new Error(`vitest with pool ${pool} failed with ${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}; log ${r.logFile}`)
    }
    say(`     ${summary.join('; ')}`)
  })
}

step('a worker thread terminated with adapter calls in flight does not crash the process', () => {
  const signals = []
  for (let i = 0; i < 3; i++) {
    const r = run(`terminate-in-flight-${i}`, process.execPath, ['src/terminate-in-flight.cjs', '10', '4'], { cwd: app })
    if (!r.ok) {
      const detail = r.stderr.split('\n').find((l) => /double free|corruption|memory allocation|panicked|Segmentation/i.test(l))
      signals.push(`run ${i + 1}: ${r.signal ?? `exit ${r.status}`}${detail ? ` (${detail.trim()})` : ''}`)
    }
  }
  expect(signals.length === 0, `the process died in ${signals.length} of 3 runs: ${signals.join('; ')}. ` +
    'NativeAdapter::call is `async fn call(&self, ...)`: its future clones self.inner on the tokio thread after the worker\'s environment has freed the object.')
})

finish()

// ---------------------------------------------------------------------------------------
// every-method.ts: one call per method of the installed index.d.ts's KavachPrismaAdapter,
// with literal arguments built from the declared parameter types, each result assigned to
// its declared type; and the method list checked against methodNames() at run time.
function everyMethodSource(dts) {
  // Interfaces with their fields and the interfaces they extend.
  const interfaces = new Map()
  const bodies = new Map()
  for (const m of dts.matchAll(/export interface (\w+) (?:extends ([\w, ]+) )?\{([\s\S]*?)\n\}/g)) {
    const fields = []
    for (const line of m[3].split('\n')) {
      const f = /^ {2}(\w+)(\??): (.+)$/.exec(line)
      if (f) fields.push({ name: f[1], optional: f[2] === '?', type: f[3] })
    }
    interfaces.set(m[1], fields)
    bodies.set(m[1], { body: m[3], bases: m[2] ? m[2].split(/,\s*/) : [] })
  }
  if (!bodies.has('KavachNativeAdapter')) throw new Error('index.d.ts: no KavachNativeAdapter interface')
  // The adapter's methods: those of KavachNativeAdapter and of every interface it extends.
  const methodLines = new Map()
  const visit = (name) => {
    const entry = bodies.get(name)
    if (!entry) throw new Error(`index.d.ts: KavachNativeAdapter extends unknown ${name}`)
    entry.bases.forEach(visit)
    for (const line of entry.body.split('\n')) {
      const m = /^ {2}(\w+)\((.*)\): Promise<(.+)>$/.exec(line)
      if (m && !['transaction', 'connect', 'close'].includes(m[1])) methodLines.set(m[1], m)
    }
  }
  visit('KavachNativeAdapter')
  const literal = (type, where) => {
    const t = type.trim()
    if (/^string( \| null)?$/.test(t)) return "'x'"
    if (/^number( \| null)?$/.test(t)) return '1'
    if (/^boolean( \| null)?$/.test(t)) return 'true'
    if (/^Date( \| string)?( \| null)?$/.test(t)) return 'new Date()'
    if (/^unknown( \| null)?$/.test(t)) return '{ any: "json" }'
    if (/^Partial<\w+>$/.test(t)) return '{}'
    if (interfaces.has(t)) {
      const fields = interfaces.get(t).filter((f) => !f.optional)
      return `{ ${fields.map((f) => `${f.name}: ${literal(f.type, `${t}.${f.name}`)}`).join(', ')} }`
    }
    throw new Error(`every-method.ts: no literal for type '${t}' (${where})`)
  }
  const calls = []
  const names = []
  for (const m of methodLines.values()) {
    const params = m[2] === '' ? [] : m[2].split(/, (?=\w+\??: )/)
    const args = params.filter((p) => !/^\w+\?:/.test(p)).map((p) => literal(p.replace(/^\w+: /, ''), `${m[1]}(${p})`))
    names.push(m[1])
    calls.push(`  const r${calls.length}: ${m[3]} = await db.${m[1]}(${args.join(', ')})\n  void r${calls.length}`)
  }
  countCalls = names.length
  declaredMethods = names
  const types = [...interfaces.keys()].filter((n) => /^(Prisma|Create)\w+$|Filter$|Options$|Adapter$|Methods$/.test(n))
  return `// Generated by scripts/install-test.mjs from the installed index.d.ts: do not edit.
import { createAdapter, methodNames } from 'kavach-native'
import type { ${types.join(', ')} } from 'kavach-native'

export type AllExportedTypes = [${types.join(', ')}]
type IsAny<T> = 0 extends 1 & T ? true : false
type Methods = Exclude<keyof KavachNativeAdapter, 'transaction' | 'connect' | 'close' | '$primary' | '$on' | 'metrics'>
// No method takes or returns \`any\`.
type AnyResult = { [K in Methods]: IsAny<Awaited<ReturnType<KavachNativeAdapter[K]>>> }[Methods]
type AnyParam = { [K in Methods]: true extends { [I in keyof Parameters<KavachNativeAdapter[K]>]: IsAny<Parameters<KavachNativeAdapter[K]>[I]> }[number] ? true : false }[Methods]
export const noAnyResult: AnyResult extends false ? true : never = true
export const noAnyParam: AnyParam extends false ? true : never = true
// The interface lists exactly these methods; methodNames() is compared below at run time.
export const declared = ${JSON.stringify(names)} as const satisfies readonly Methods[]
type Undeclared = Exclude<Methods, (typeof declared)[number]>
export const complete: [Undeclared] extends [never] ? true : never = true

export async function callEveryMethod(url: string): Promise<void> {
  const db: KavachNativeAdapter = createAdapter(url, { skipMigrations: false } satisfies AdapterOptions)
  const runtime = new Set(methodNames())
  const missing = declared.filter((name) => !runtime.has(name))
  if (missing.length > 0 || runtime.size !== declared.length) throw new Error(\`methodNames() and index.d.ts differ: \${missing.join(', ')}\`)
${calls.join('\n')}
  const options: TransactionOptions = { timeout: 1000, maxWait: 500, isolationLevel: 'Serializable' }
  const n: number = await db.transaction(async (tx: KavachPrismaAdapter) => (await tx.listAgents()).length, options)
  void n
  const created: string[] = await db.connect()
  void created
  await db.close()
}
`
}
