// npm run lint:workflows: actionlint (with shellcheck for the run: scripts) on
// .github/workflows/*.yml; both installed by scripts/platforms.mjs on first use.
import fs from 'node:fs'
import path from 'node:path'
import { ensureActionlint, root, sh } from './platforms.mjs'

const actionlint = ensureActionlint()
const dir = path.join(root, '.github/workflows')
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join('.github/workflows', f))
sh(actionlint, ['-version'], { cwd: root })
sh(actionlint, ['-no-color', ...files], { cwd: root })
console.log(`actionlint: ${files.join(', ')} clean`)
