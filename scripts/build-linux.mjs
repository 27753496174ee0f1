// npm run build:linux [-- <platform>...]: every Linux binary, on a linux-x64 host, into its
// npm/<platform>/ package: x64 and arm64, glibc (GLIBC_2.17 floor) and musl.
//
// Installs its own toolchain first (scripts/platforms.mjs: rustup targets; zig and
// cargo-zigbuild from PyPI into KAVACH_CROSS_DIR, default target/cross) and builds with
// napi-rs's zig mode, `napi build --platform --release --target <t> -x`, into
// KAVACH_CROSS_DIR/cargo. Release profile: LTO, one codegen unit, symbols stripped, no
// debug info. Prints each .node's size, its highest GLIBC symbol version and its build time.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cargoTargetDir, checkHost, describeBinary, ensureRustTargets, ensureZig, log, nodeFile, root, selectTargets, sh } from './platforms.mjs'

checkHost()
const targets = selectTargets(process.argv.slice(2))
const started = Date.now()
ensureRustTargets(targets.map((t) => t.triple))
const toolEnv = ensureZig()
log(`build:linux: tools ready in ${((Date.now() - started) / 1000).toFixed(0)}s; CARGO_TARGET_DIR=${cargoTargetDir}`)

const napi = path.join(root, 'node_modules/@napi-rs/cli/dist/cli.js')
const rows = []
for (const target of targets) {
  const t = Date.now()
  // napi writes the .node (and a loader and types nobody needs) into a staging folder: the
  // repo's binding.js / binding.d.ts stay as `npm run build` generates them.
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), `kavach-${target.platform}-`))
  log(`build:linux: ${target.platform} (napi build --target ${target.build} -x)`)
  sh(process.execPath, [napi, 'build', '--platform', '--release', '--target', target.build, '-x', '--output-dir', staging, '--no-js'], {
    cwd: root,
    env: { ...process.env, ...toolEnv, CARGO_TARGET_DIR: cargoTargetDir },
  })
  const built = path.join(staging, path.basename(nodeFile(target)))
  if (!fs.existsSync(built)) throw new Error(`napi build made no ${path.basename(built)} in ${staging}`)
  fs.copyFileSync(built, nodeFile(target))
  fs.rmSync(staging, { recursive: true, force: true })
  const info = describeBinary(nodeFile(target))
  if (info.debugInfo || info.symbols) throw new Error(`${nodeFile(target)} carries ${info.debugInfo ? 'debug info' : 'a symbol table'}`)
  if (target.libc === 'glibc' && info.maxGlibc !== 'GLIBC_2.17') throw new Error(`${target.platform} needs ${info.maxGlibc}, not GLIBC_2.17`)
  rows.push({ target, info, seconds: (Date.now() - t) / 1000 })
  log(`build:linux: ${target.platform}: ${info.mb} MB, ${info.maxGlibc ?? 'no GLIBC symbols'}, needs ${info.needed.join(' ')} (${rows.at(-1).seconds.toFixed(0)}s)`)
}

log('')
log('platform            size      max GLIBC     needs                       build')
for (const { target, info, seconds } of rows) {
  log(`${target.platform.padEnd(19)} ${`${info.mb} MB`.padEnd(9)} ${(info.maxGlibc ?? '-').padEnd(13)} ${info.needed.join(' ').padEnd(27)} ${seconds.toFixed(0)}s`)
}
log(`build:linux: ${rows.length} targets in ${((Date.now() - started) / 1000).toFixed(0)}s`)
process.stdout.write(`${rows.map((r) => path.relative(root, nodeFile(r.target))).join('\n')}\n`)
