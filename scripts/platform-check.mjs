// Runs under the Node of one target: what a user on that platform does. For the Linux targets
// scripts/test-platforms.mjs starts it in each one's sandbox (scripts/platforms.mjs); the
// release workflow runs it on the native macOS and Windows runners.
//
//   node scripts/platform-check.mjs --platform <p> --tarballs <dir> --work <dir> --pnpm <pnpm.cjs> --store <dir>
//
//  1. this process is that platform (arch, libc) and sees it as its loader will;
//  2. the main package alone: require() names kavach-native-<platform> and the fix;
//  3. a fresh project: pnpm install, then `pnpm add` of the main tarball; of the platform
//     packages (every one in --tarballs is offered) pnpm installs only this platform's;
//  4. require() and import load that package's .node;
//  5. demo/demo.mjs runs against the installed package;
//  6. a representative part of the SQLite suite (vitest, forks) runs against it.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = {}
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
const platform = args.platform
const tarballs = path.resolve(args.tarballs)
const work = path.resolve(args.work)
const pnpmBin = path.resolve(args.pnpm)
const store = path.resolve(args.store)
const packageName = `kavach-native-${platform}`
const [os, arch, abi] = platform.split('-')

// The suite files that run here: the adapter's methods, transactions, the other tables,
// concurrency and dispatch (a child process of this Node included). Left out: the CLI and
// storage suites (they open files with better-sqlite3, a native addon of its own) and the
// parity suites (they need a generated Prisma client and its engine).
export const SUITE = ['fixtures.ts', 'methods.test.ts', 'transactions.test.ts', 'more-tables.test.ts', 'dispatch.test.ts']

let passed = 0
let failed = 0
const started = Date.now()
const say = (line) => process.stdout.write(`${line}\n`)

function run(command, commandArgs, { cwd = work, env = {}, expectFailure = false, timeout = 15 * 60_000 } = {}) {
  const result = spawnSync(command, commandArgs, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env },
    maxBuffer: 64 * 1024 * 1024,
    timeout,
  })
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`
  const ok = expectFailure ? result.status !== 0 && result.status !== null : result.status === 0
  if (!ok && output.trim()) process.stdout.write(output.trimEnd().split('\n').slice(-60).join('\n').replace(/^/gm, '    | ') + '\n')
  return { ok, status: result.status, signal: result.signal, stdout: result.stdout ?? '', stderr: result.stderr ?? '', output }
}

function must(result, what) {
  if (!result.ok) throw new Error(`${what} (${result.signal ? `killed by ${result.signal}` : `exit ${result.status}`})`)
  return result
}

function expect(condition, what) {
  if (!condition) throw new Error(what)
}

function step(name, fn) {
  const t = Date.now()
  try {
    const note = fn()
    passed++
    say(`ok   ${name} (${((Date.now() - t) / 1000).toFixed(1)}s)${note ? `\n     ${note}` : ''}`)
    return true
  } catch (error) {
    failed++
    say(`FAIL ${name} (${((Date.now() - t) / 1000).toFixed(1)}s): ${error.message}`)
    return false
  }
}

function finish() {
  say(`${platform}: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(0)}s`)
  process.exit(failed > 0 ? 1 : 0)
}

const node = process.execPath
// kavach-native-0.1.0.tgz, kavach-native-linux-x64-gnu-0.1.0.tgz, ...
const tgz = (name) => {
  const file = fs.readdirSync(tarballs).find((f) => f.startsWith(`${name}-`) && /^\d/.test(f.slice(name.length + 1)))
  return file ? path.join(tarballs, file) : null
}
const mainTgz = tgz('kavach-native')
fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(work, { recursive: true })

step(`this Node is ${platform} (${process.version})`, () => {
  expect(process.platform === os && process.arch === arch, `process is ${process.platform}-${process.arch}`)
  if (os !== 'linux') return `${process.platform}-${process.arch}`
  const report = process.report.getReport()
  const processLibc = report.header.glibcVersionRuntime ? 'gnu' : 'musl'
  expect(processLibc === abi, `process libc is ${processLibc}`)
  // napi-rs's loader (binding.js) and pnpm (detect-libc) read /usr/bin/ldd first, if there is one.
  const ldd = !fs.existsSync('/usr/bin/ldd') ? 'absent' : fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? 'musl' : 'gnu'
  expect(ldd === abi || ldd === 'absent', `/usr/bin/ldd says ${ldd}`)
  return `libc: ${report.header.glibcVersionRuntime ? `glibc ${report.header.glibcVersionRuntime}` : 'musl'}; /usr/bin/ldd: ${ldd}`
})

const offered = fs
  .readdirSync(tarballs)
  .map((f) => /^(kavach-native-[a-z0-9]+-[a-z0-9]+(?:-[a-z]+)?)-\d/.exec(f)?.[1])
  .filter(Boolean)

// Relative paths: Windows' tar and GNU tar both read them (a drive letter is a host to GNU tar).
function untar(file, dir) {
  fs.mkdirSync(dir, { recursive: true })
  execFileSync('tar', ['-xzf', path.relative(work, file), '-C', path.relative(work, dir), '--strip-components=1'], { cwd: work })
}

step("without its platform package (none, then only the other platforms'), require() names it and the fix", () => {
  expect(mainTgz, `no kavach-native tarball in ${tarballs}`)
  const bare = path.join(work, 'bare')
  untar(mainTgz, path.join(bare, 'node_modules/kavach-native'))
  const requireFails = () => {
    const r = must(run(node, ['-e', "require('kavach-native')"], { cwd: bare, expectFailure: true }), 'require() should have failed')
    expect(r.stderr.includes(`"${packageName}" is not installed`), `the error does not name ${packageName}:\n${r.stderr}`)
    expect(r.stderr.includes('Fix: remove node_modules and the lockfile'), `the error gives no fix:\n${r.stderr}`)
    return r.stderr.split('\n').find((l) => l.includes('kavach-native:'))?.trim()
  }
  const message = requireFails()
  // A lockfile written on another platform: its packages are there, this one's is not.
  const others = offered.filter((name) => name !== packageName)
  for (const other of others) untar(tgz(other), path.join(bare, 'node_modules', other))
  if (others.length > 0) requireFails()
  return `${message}${others.length > 0 ? `\n     the same with ${others.join(', ')} installed` : ''}`
})

const app = path.join(work, 'app')
const pnpm = (commandArgs) => run(node, [pnpmBin, ...commandArgs, '--store-dir', store, '--reporter=append-only'], { cwd: app })

const installed = step(`pnpm add kavach-native into a fresh project (offered: ${offered.length} platform packages)`, () => {
  expect(tgz(packageName), `no ${packageName} tarball in ${tarballs}`)
  // The vitest this repo runs (or, without its node_modules, the range it asks for).
  const installedVitest = path.join(root, 'node_modules/vitest/package.json')
  const vitestVersion = fs.existsSync(installedVitest)
    ? JSON.parse(fs.readFileSync(installedVitest, 'utf8')).version
    : JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies.vitest
  fs.mkdirSync(app, { recursive: true })
  fs.writeFileSync(
    path.join(app, 'package.json'),
    `${JSON.stringify(
      {
        name: 'kavach-platform-check',
        private: true,
        devDependencies: { vitest: vitestVersion },
        // Until the platform packages are published, they come from their tarballs.
        pnpm: { overrides: Object.fromEntries(offered.map((name) => [name, `file:${tgz(name)}`])) },
      },
      null,
      2,
    )}\n`,
  )
  must(pnpm(['install']), 'pnpm install failed')
  must(pnpm(['add', mainTgz]), 'pnpm add failed')
  // pnpm skips the other OSes' packages; from file: tarballs it records no libc (pnpm 9: no
  // cpu either), so other Linux packages may land beside ours: the loader must pick ours.
  const present = fs.readdirSync(path.join(app, 'node_modules/.pnpm')).filter((d) => /^kavach-native-[a-z]/.test(d)).map((d) => d.replace(/@file.*/, ''))
  expect(present.includes(packageName), `${packageName} was not installed; installed: ${present.join(', ') || 'none'}`)
  const rollup = fs.readdirSync(path.join(app, 'node_modules/.pnpm')).filter((d) => d.startsWith('@rollup+rollup-'))
  return `installed ${present.join(', ')}; vitest ${vitestVersion} with ${rollup.map((d) => d.replace(/@\d.*/, '').replace('@rollup+', '')).join(', ')}`
})
if (!installed) finish()

step(`require() and import load ${packageName}`, () => {
  const probe = `
    const k = require('kavach-native')
    const loaded = process.report.getReport().sharedObjects.filter((f) => f.endsWith('.node')).map((f) => f.replaceAll('\\\\', '/'))
    console.log(JSON.stringify({ methods: k.methodNames().length, loaded }))`
  const r = JSON.parse(must(run(node, ['-e', probe], { cwd: app }), 'require failed').stdout)
  expect(r.loaded.length === 1 && r.loaded[0].includes(`/${packageName}/`), `loaded: ${r.loaded.join(', ')}`)
  const esm = must(run(node, ['--input-type=module', '-e', "import { createAdapter } from 'kavach-native'; const db = createAdapter(':memory:'); console.log((await db.connect()).length); await db.close()"], { cwd: app }), 'import failed')
  return `${r.methods} methods from ${path.relative(app, fs.realpathSync(r.loaded[0]))}; ESM connect created ${esm.stdout.trim()} tables`
})

// The repo's demo and tests import '../index.js' (and '../binding.js'): in the project those
// are the installed package's.
fs.writeFileSync(path.join(app, 'index.js'), "module.exports = require('kavach-native')\n")
fs.writeFileSync(path.join(app, 'binding.js'), "module.exports = require('kavach-native/binding.js')\n")

step('demo/demo.mjs', () => {
  fs.mkdirSync(path.join(app, 'demo'), { recursive: true })
  fs.copyFileSync(path.join(root, 'demo/demo.mjs'), path.join(app, 'demo/demo.mjs'))
  const r = must(run(node, ['demo/demo.mjs'], { cwd: app }), 'the demo failed')
  const last = r.stdout.trim().split('\n').at(-1)
  expect(/All flows ran/.test(last), `the demo ended with: ${last}`)
  return `${r.stdout.trim().split('\n').length} lines; ${last}`
})

step(`vitest: ${SUITE.filter((f) => f.endsWith('.test.ts')).join(', ')} (SQLite)`, () => {
  fs.mkdirSync(path.join(app, '__test__'), { recursive: true })
  for (const file of SUITE) fs.copyFileSync(path.join(root, '__test__', file), path.join(app, '__test__', file))
  fs.writeFileSync(
    path.join(app, 'vitest.config.mjs'),
    `export default { test: { pool: 'forks', include: ['__test__/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, env: { KAVACH_TEST_PROVIDER: 'sqlite' } } }\n`,
  )
  const r = run(node, [path.join(app, 'node_modules/vitest/vitest.mjs'), 'run'], { cwd: app, env: { CI: '1' } })
  const summary = r.output.split('\n').filter((l) => /^\s*(Test Files|Tests)\s/.test(l)).map((l) => l.trim())
  must(r, `vitest failed: ${summary.join('; ')}`)
  return summary.join('; ')
})

finish()
