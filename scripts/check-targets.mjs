// npm run check:targets [-- <triple>...]: compile checks, on this Linux host, of the targets
// only the release workflow's native runners can build and test: darwin arm64 and x64, and
// Windows x64 (gnu: the msvc target needs an SDK download this machine cannot reach). Each is
// `cargo zigbuild check` (scripts/platforms.mjs installs zig): the C code (mimalloc,
// SQLite, ring) is compiled for the target with zig cc and the Rust code type-checked; nothing
// is linked and nothing runs, so this proves neither a working binary nor passing tests.
//
// What zig lacks for these targets is supplied per target, as the C compiler's flags:
// - windows-gnu: mimalloc prints __DATE__, which zig's clang makes an error there (-Wdate-time);
//   napi-build wants a libnode.dll to link against (LIBNODE_PATH): an empty file, as nothing
//   is linked;
// - darwin: zig ships macOS's libc headers but no SDK frameworks; mimalloc includes
//   CommonCrypto for CCRandomGenerateBytes, so two stub headers declare just that (the real
//   SDK on the macOS runners has them; linking would also need CoreFoundation and
//   SystemConfiguration, which is why darwin is checked, not built, here).
import fs from 'node:fs'
import path from 'node:path'
import { cargoTargetDir, checkHost, ensureRustTargets, ensureZig, log, root, sh, toolsDir } from './platforms.mjs'

const TARGETS = ['aarch64-apple-darwin', 'x86_64-apple-darwin', 'x86_64-pc-windows-gnu']

checkHost()
const targets = process.argv.length > 2 ? process.argv.slice(2) : TARGETS
ensureRustTargets(targets)
const env = { ...process.env, ...ensureZig(), CARGO_TARGET_DIR: cargoTargetDir }

const stubs = path.join(toolsDir, 'darwin-stubs')
fs.mkdirSync(path.join(stubs, 'CommonCrypto'), { recursive: true })
fs.writeFileSync(path.join(stubs, 'CommonCrypto/CommonCryptoError.h'), '#pragma once\n#include <stdint.h>\ntypedef int32_t CCStatus;\ntypedef int32_t CCCryptorStatus;\nenum { kCCSuccess = 0 };\n')
fs.writeFileSync(path.join(stubs, 'CommonCrypto/CommonRandom.h'), '#pragma once\n#include <stddef.h>\n#include <CommonCrypto/CommonCryptoError.h>\ntypedef CCCryptorStatus CCRNGStatus;\nCCRNGStatus CCRandomGenerateBytes(void *bytes, size_t count);\n')
const libnode = path.join(toolsDir, 'windows-stub')
fs.mkdirSync(libnode, { recursive: true })
fs.writeFileSync(path.join(libnode, 'libnode.dll'), '')
const cflags = (target) => (target.endsWith('-apple-darwin') ? `-I${stubs}` : target.endsWith('-windows-gnu') ? '-Wno-date-time' : '')
const rows = []
for (const target of targets) {
  const t = Date.now()
  log(`check:targets: ${target} (cargo zigbuild check)`)
  const targetEnv = { ...env, [`CFLAGS_${target.replaceAll('-', '_')}`]: cflags(target), ...(target.endsWith('-windows-gnu') ? { LIBNODE_PATH: libnode } : {}) }
  sh(path.join(toolsDir, 'bin/cargo-zigbuild'), ['check', '--release', '--lib', '--target', target], { cwd: root, env: targetEnv })
  rows.push(`${target.padEnd(24)} compiles (${((Date.now() - t) / 1000).toFixed(0)}s)`)
}
for (const row of rows) log(`check:targets: ${row}`)
