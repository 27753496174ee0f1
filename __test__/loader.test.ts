// The loader (index.js + napi-rs's binding.js) on every platform package.json names, seen
// from this host: a child Node whose platform, arch and libc are faked by a preload, with the
// installed package's files and no binary, must name the package of that platform and the
// fix. (npm run test:platforms loads the real binaries on the real Linux platforms.)
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = path.resolve(__dirname, '..')
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-loader-'))
const pkgDir = path.join(work, 'node_modules/kavach-native')
fs.mkdirSync(pkgDir, { recursive: true })
for (const file of ['index.js', 'observe.js', 'binding.js', 'package.json']) fs.copyFileSync(path.join(root, file), path.join(pkgDir, file))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

// Fakes process.platform / process.arch, and on Linux what /usr/bin/ldd says and whether the
// process report has a glibc version (FAKE_LIBC=gnu|musl).
const preload = path.join(work, 'fake-platform.cjs')
fs.writeFileSync(
  preload,
  `const fs = require('fs')
const { FAKE_PLATFORM: platform, FAKE_ARCH: arch, FAKE_LIBC: libc } = process.env
Object.defineProperty(process, 'platform', { value: platform })
Object.defineProperty(process, 'arch', { value: arch })
const readFileSync = fs.readFileSync
fs.readFileSync = function (file, ...rest) {
  if (file === '/usr/bin/ldd') {
    if (platform !== 'linux') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
    return libc === 'musl' ? '#!/bin/sh\\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\\n' : '#!/bin/bash\\n# GNU C Library ldd\\n'
  }
  return readFileSync.call(this, file, ...rest)
}
const getReport = process.report.getReport.bind(process.report)
process.report.getReport = () => {
  const report = getReport()
  if (libc === 'musl') delete report.header.glibcVersionRuntime
  return report
}
`,
)

function load(platform: string, arch: string, libc = '', env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['-r', preload, '-e', "console.log(require('kavach-native').methodNames().length)"], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '', FAKE_PLATFORM: platform, FAKE_ARCH: arch, FAKE_LIBC: libc, ...env },
    timeout: 20_000,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const published = Object.keys(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).optionalDependencies)
const platforms = [
  ['linux', 'x64', 'gnu', 'kavach-native-linux-x64-gnu'],
  ['linux', 'x64', 'musl', 'kavach-native-linux-x64-musl'],
  ['linux', 'arm64', 'gnu', 'kavach-native-linux-arm64-gnu'],
  ['linux', 'arm64', 'musl', 'kavach-native-linux-arm64-musl'],
  ['darwin', 'arm64', '', 'kavach-native-darwin-arm64'],
  ['darwin', 'x64', '', 'kavach-native-darwin-x64'],
  ['win32', 'x64', '', 'kavach-native-win32-x64-msvc'],
]

describe('the loader without the platform package', () => {
  it('covers every optional dependency in package.json', () => {
    expect(platforms.map((p) => p[3]).sort()).toEqual([...published].sort())
  })

  for (const [platform, arch, libc, name] of platforms) {
    it(`${platform}-${arch}${libc ? ` (${libc})` : ''}: names ${name} and the fix`, () => {
      const r = load(platform, arch, libc)
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain(`the optional dependency "${name}" is not installed`)
      expect(r.stderr).toContain('Fix: remove node_modules and the lockfile, then install again')
      expect(r.stderr).toContain(`(or add "${name}" to your dependencies)`)
    })
  }

  it('on a platform with no package (linux-riscv64): says so and how to build from source', () => {
    const r = load('linux', 'riscv64', 'gnu')
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('no prebuilt native binary for linux-riscv64 ("kavach-native-linux-riscv64-gnu" is not published)')
    expect(r.stderr).toContain('npm install && npm run build')
  })
})

// The host's binary, wherever a build put it (npm run build: the repo root; build:linux: npm/).
const hostBinary = ['kavach-native.linux-x64-gnu.node', 'npm/linux-x64-gnu/kavach-native.linux-x64-gnu.node']
  .map((f) => path.join(root, f))
  .find((f) => process.platform === 'linux' && process.arch === 'x64' && fs.existsSync(f))

describe.skipIf(!hostBinary)('NAPI_RS_NATIVE_LIBRARY_PATH', () => {
  it('loads the binary it names, whatever the platform', () => {
    const r = load('darwin', 'arm64', '', { NAPI_RS_NATIVE_LIBRARY_PATH: hostBinary! })
    expect(r.stderr).toBe('')
    expect(Number(r.stdout)).toBeGreaterThan(100)
  })

  it('a binary that does not load is reported with the package the platform needs', () => {
    const bogus = path.join(work, 'bogus.node')
    fs.writeFileSync(bogus, 'not an ELF file')
    const r = load('linux', 'arm64', 'musl', { NAPI_RS_NATIVE_LIBRARY_PATH: bogus })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('"kavach-native-linux-arm64-musl" is not installed')
  })
})
