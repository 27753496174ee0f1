// Packs kavach-native the napi-rs way: the main package (JS loader, types, schema, CLI) plus
// one package per platform under npm/<platform>/ holding only that platform's `.node`.
//
//   node scripts/pack.mjs [--out <dir>] [--source newest|npm|root]
//                                            (npm run pack; default out: target/npm-pack)
//
// A platform's `kavach-native.<platform>.node` comes from the repo root (`npm run build`
// makes the host's there) or from npm/<platform>/ (`npm run build:linux` puts every Linux
// one there): the newer of the two by default, or only one place with --source. It is
// packed with npm/<platform>/'s package.json and README.md from a staging copy (npm/ is
// left as it is); platforms without a built binary are listed and skipped. Prints one
// tarball path per line on stdout, last.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const outIndex = args.indexOf('--out')
const outDir = path.resolve(outIndex >= 0 ? args[outIndex + 1] : path.join(root, 'target/npm-pack'))
const sourceIndex = args.indexOf('--source')
const source = sourceIndex >= 0 ? args[sourceIndex + 1] : 'newest'
const log = (line) => process.stderr.write(`${line}\n`)

const main = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const binaryName = main.napi.binaryName
const optional = main.optionalDependencies ?? {}

function fail(message) {
  log(`pack: ${message}`)
  process.exit(1)
}

function npmPack(dir) {
  // --json names the tarball; --ignore-scripts: nothing is built at pack time.
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', outDir], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [info] = JSON.parse(out)
  return { file: path.join(outDir, info.filename), files: info.files.map((f) => f.path), size: info.size }
}

if (!['newest', 'npm', 'root'].includes(source)) fail(`--source must be newest, npm or root, not ${source}`)
fs.mkdirSync(outDir, { recursive: true })
const staging = fs.mkdtempSync(path.join(outDir, '.stage-'))

const platforms = fs.readdirSync(path.join(root, 'npm')).sort()
const packed = []
const skipped = []
for (const platform of platforms) {
  const dir = path.join(root, 'npm', platform)
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  if (pkg.version !== main.version) fail(`${pkg.name} is at ${pkg.version} but kavach-native at ${main.version}; the loader requires the same version`)
  if (optional[pkg.name] !== main.version) fail(`package.json optionalDependencies must list "${pkg.name}": "${main.version}"`)
  const nodeFile = `${binaryName}.${platform}.node`
  if (!pkg.files.includes(nodeFile) || pkg.main !== nodeFile) fail(`npm/${platform}/package.json must ship and point at ${nodeFile}`)
  const candidates = { root: path.join(root, nodeFile), npm: path.join(dir, nodeFile) }
  const built = Object.entries(candidates)
    .filter(([where, file]) => (source === 'newest' || source === where) && fs.existsSync(file))
    .map(([, file]) => file)
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]
  if (!built) {
    skipped.push(platform)
    continue
  }
  const stage = path.join(staging, platform)
  fs.mkdirSync(stage)
  for (const file of ['package.json', 'README.md']) fs.copyFileSync(path.join(dir, file), path.join(stage, file))
  fs.copyFileSync(built, path.join(stage, nodeFile))
  const result = npmPack(stage)
  if (result.files.join() !== ['README.md', nodeFile, 'package.json'].sort().join()) fail(`${pkg.name} would ship ${result.files.join(', ')}`)
  log(`${pkg.name}: ${path.basename(result.file)} (${(result.size / 1e6).toFixed(1)} MB packed; ${nodeFile} ${(fs.statSync(built).size / 1e6).toFixed(2)} MB, from ${path.relative(root, built)})`)
  packed.push(result.file)
}
fs.rmSync(staging, { recursive: true, force: true })
if (packed.length === 0) fail(`no ${binaryName}.<platform>.node in ${root} or npm/*/: run \`npm run build\` (or \`npm run build:linux\`) first`)
if (skipped.length > 0) log(`no binary built here for: ${skipped.join(', ')} (built on those platforms, or by npm run build:linux)`)

const mainResult = npmPack(root)
const unexpected = mainResult.files.filter((f) => !/^(index\.js|observe\.js|index\.d\.ts|binding\.js|binding\.d\.ts|schema\.prisma|README\.md|package\.json|LICENSE|bin\/kavach-native\.js)$/.test(f))
if (unexpected.length > 0) fail(`kavach-native would ship unexpected files: ${unexpected.join(', ')}`)
log(`kavach-native: ${path.basename(mainResult.file)} (${(mainResult.size / 1e3).toFixed(0)} kB packed: ${mainResult.files.join(', ')})`)

process.stdout.write(`${[mainResult.file, ...packed].join('\n')}\n`)
