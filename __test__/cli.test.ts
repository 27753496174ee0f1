// The `kavach-native` command line (bin/kavach-native.js), run as a user runs it: a node
// process on the bin file, reading its stdout, stderr and exit code.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const bin = path.resolve(__dirname, '../bin/kavach-native.js')
const native = require('../index.js')

function run(args: string[], env: Record<string, string | undefined> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: undefined, ...env },
    timeout: 30_000,
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** As `run`, without blocking: the unreachable-server cases wait out the pool timeout side by side. */
function runAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, DATABASE_URL: undefined } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const stderrLines = (stderr: string) => stderr.split('\n').filter((line) => line !== '')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-cli-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe('schema', () => {
  it.each(['sqlite', 'postgresql', 'mysql'] as const)('--provider %s prints the DDL statements joined with ;', (provider) => {
    const { code, stdout, stderr } = run(['schema', '--provider', provider])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toBe(`${native.schemaDdl(provider).join(';\n')};\n`)
    expect(stdout).toMatch(/CREATE TABLE IF NOT EXISTS .kavach_users./)
  })

  it('--provider=value works too', () => {
    expect(run(['schema', '--provider=sqlite']).stdout).toBe(run(['schema', '--provider', 'sqlite']).stdout)
  })

  it('--prisma prints the models of schema.prisma, without generator and datasource, to append to a schema', () => {
    const { code, stdout } = run(['schema', '--prisma'])
    expect(code).toBe(0)
    const full: string = native.schemaPrisma()
    const models = full.slice(full.search(/^model /m)).trimEnd()
    expect(stdout.endsWith(`${models}\n`)).toBe(true)
    expect(stdout).not.toMatch(/^\s*(generator|datasource)\s/m)
    expect(stdout).toMatch(/^\/\/ KavachOS models, from kavach-native \d/)
    const names = (text: string) => [...text.matchAll(/^model (\w+) \{/gm)].map((m) => m[1])
    expect(names(stdout)).toEqual(names(full))
    expect(names(stdout)).toContain('KavachAgent')
  })

  it('an unknown provider is one line on stderr and a non-zero exit', () => {
    const { code, stdout, stderr } = run(['schema', '--provider', 'oracle'])
    expect(code).not.toBe(0)
    expect(stdout).toBe('')
    expect(stderrLines(stderr)).toHaveLength(1)
    expect(stderr).toMatch(/unknown provider 'oracle'.*sqlite.*postgresql.*mysql/)
  })

  it('a missing --provider value, or neither option, is a usage error', () => {
    for (const args of [['schema', '--provider'], ['schema'], ['schema', '--provider', 'sqlite', '--prisma'], ['schema', '--bogus']]) {
      const { code, stderr } = run(args)
      expect(code, args.join(' ')).toBe(2)
      expect(stderrLines(stderr), args.join(' ')).toHaveLength(1)
    }
  })
})

describe('push', () => {
  it('creates the missing tables of a SQLite file and says which; a second push creates none', () => {
    const file = path.join(dir, 'push.db')
    const first = run(['push', '--url', `file:${file}`])
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^Created 39 tables: kavach_users, /)
    for (const table of ['kavach_agents', 'kavach_audit_logs', 'kavach_jwt_refresh_tokens']) expect(first.stdout).toContain(table)
    expect(fs.existsSync(file)).toBe(true)

    const second = run(['push', '--url', `file:${file}`])
    expect(second.code).toBe(0)
    expect(second.stdout).toMatch(/Nothing to create/)
  })

  it('creates only what is missing', async () => {
    const file = path.join(dir, 'partial.db')
    const db = native.createAdapter(`file:${file}`)
    await db.connect()
    await db.close()
    const Database = require('better-sqlite3')
    const raw = new Database(file)
    raw.exec('DROP TABLE kavach_sessions; DROP TABLE kavach_api_keys')
    raw.close()
    const { code, stdout } = run(['push', '--url', `file:${file}`])
    expect(code).toBe(0)
    expect(stdout.trim()).toBe('Created 2 tables: kavach_sessions, kavach_api_keys')
  })

  it('takes DATABASE_URL when --url is not given', () => {
    const file = path.join(dir, 'env.db')
    const { code, stdout } = run(['push'], { DATABASE_URL: `file:${file}` })
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Created 39 tables/)
  })

  it('without any URL: a usage error', () => {
    const { code, stderr } = run(['push'])
    expect(code).toBe(2)
    expect(stderrLines(stderr)).toHaveLength(1)
    expect(stderr).toMatch(/--url/)
  })

  it('a malformed URL: one line on stderr, non-zero exit', () => {
    for (const url of ['foo://x', 'postgresql://u:secret@', '']) {
      const { code, stdout, stderr } = run(['push', '--url', url])
      expect(code, url).not.toBe(0)
      expect(stdout, url).toBe('')
      expect(stderrLines(stderr), url).toHaveLength(1)
      expect(stderr, url).not.toContain('secret')
    }
  })

  it.concurrent('an unreachable server: one line naming it, P1001, without the password', async () => {
    const { code, stdout, stderr } = await runAsync(['push', '--url', 'postgresql://u:secret@127.0.0.1:1/db'])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderrLines(stderr)).toHaveLength(1)
    expect(stderr).toMatch(/^kavach-native: P1001: .*127\.0\.0\.1:1/)
    expect(stderr).not.toContain('secret')
  })

  it.concurrent('an unreachable MySQL server, password with URL escapes: same', async () => {
    const { code, stderr } = await runAsync(['push', '--url', 'mysql://root:s%40cret%21@127.0.0.1:1/db'])
    expect(code).toBe(1)
    expect(stderrLines(stderr)).toHaveLength(1)
    expect(stderr).not.toMatch(/s%40cret|s@cret/)
  })
})

describe('usage', () => {
  it('--help prints the commands', () => {
    const { code, stdout } = run(['--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/schema --provider/)
    expect(stdout).toMatch(/push/)
  })

  it('no command, or an unknown one, exits 2', () => {
    expect(run([]).code).toBe(2)
    const { code, stderr } = run(['migrate'])
    expect(code).toBe(2)
    expect(stderrLines(stderr)).toEqual([expect.stringMatching(/unknown command 'migrate'/)])
  })
})
