// The specific cases of issue 11 (items 1, 2, 3, 6 and 7): inputs that aborted the process,
// hung it, wedged an adapter, passed silently, or matched a secret that differs. Cases that
// could abort or hang run in a child process, so that each is a failing assertion (with what
// happened) rather than a dead test runner.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createAdapter } from '../index.js'
import { adapterPerSuite, dropFreshDatabases, freshUrl, make, onServer, provider, T0, uid } from './fixtures'

const index = path.resolve(__dirname, '..', 'index.js')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-robust-'))
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await dropFreshDatabases()
})
let files = 0
/** A database URL of the provider under test for a child process: a SQLite file, or a fresh server database. */
const childUrl = async () => (provider === 'sqlite' ? `file:${path.join(dir, `child-${++files}.db`)}` : await freshUrl())

interface ChildRun {
  /** What `body` returned, or { threw } if it threw. */
  result: any
  status: number | null
  signal: string | null
  stderr: string
}

/**
 * Runs `body` (the text of an async function body, with `createAdapter`, `URL`, `T0`, `within`
 * and `describeError` in scope) in a new Node process and returns what it returned. A process
 * that aborts, or does not finish within 20 s, shows in `signal` / `status`.
 */
function inChild(body: string, url = ''): ChildRun {
  const script = `
    const { createAdapter } = require(${JSON.stringify(index)})
    const URL = process.env.KAVACH_CHILD_URL
    const T0 = new Date(${T0.getTime()})
    const describeError = (e) => (e instanceof Error ? { name: e.name, code: e.code, message: e.message } : { notAnError: String(e) })
    const within = (promise, ms, what) => Promise.race([
      Promise.resolve(promise).then((value) => ({ value }), (error) => ({ error: describeError(error) })),
      new Promise((resolve) => setTimeout(() => resolve({ hang: (what || 'the call') + ' did not settle within ' + ms + ' ms' }), ms)),
    ])
    ;(async () => { ${body} })().then(
      (result) => { console.log('RESULT ' + JSON.stringify(result === undefined ? null : result)); process.exit(0) },
      (error) => { console.log('RESULT ' + JSON.stringify({ threw: describeError(error) })); process.exit(0) },
    )`
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, KAVACH_CHILD_URL: url } })
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  return { result: line ? JSON.parse(line.slice(7)) : undefined, status: child.status, signal: child.signal, stderr: child.stderr.slice(-800) }
}

/** The child exited by itself (no abort, no hang) and reported a result. */
function expectSurvived(run: ChildRun, what: string) {
  expect({ status: run.status, signal: run.signal }, `${what}: the process died or hung (stderr: ${run.stderr.replace(/\s+/g, ' ')})`).toEqual({ status: 0, signal: null })
  expect(run.result, `${what}: no result`).toBeDefined()
}

// ---- item 1: transaction options that aborted the process --------------------------------------

describe('transaction() options out of range are refused by name (item 1)', () => {
  const cases = ['timeout', 'maxWait'].flatMap((option) => [Infinity, 1e300, 1e308, -Infinity].map((value) => ({ option, value })))
  it.each(cases)('{ $option: $value }: a PrismaClientValidationError naming it, fn not run, the adapter goes on', async ({ option, value }) => {
    const run = inChild(
      `const db = createAdapter(URL)
       let ran = false
       const outcome = await within(db.transaction(async () => { ran = true; return 1 }, { ${option}: ${String(value)} }), 10000, 'transaction()')
       const after = await within(db.transaction(async (tx) => tx.findUserById('nobody')), 10000, 'a transaction afterwards')
       await within(db.close(), 5000)
       return { outcome, ran, after }`,
      await childUrl(),
    )
    expectSurvived(run, `transaction(fn, { ${option}: ${value} })`)
    const { outcome, ran, after } = run.result
    expect(outcome.error, `transaction(fn, { ${option}: ${value} }) resolved with ${JSON.stringify(outcome)}`).toBeDefined()
    expect(outcome.error.name).toBe('PrismaClientValidationError')
    expect(outcome.error.message).toContain('transaction()')
    expect(outcome.error.message).toContain(option)
    expect(ran, 'fn ran although its options are refused').toBe(false)
    expect(after).toEqual({ value: null })
  })
})

// ---- item 2: URL parameters that aborted or hung the process --------------------------------------

describe.skipIf(onServer)('URL parameters out of range are refused at createAdapter, naming the parameter (item 2)', () => {
  // Only the URL is under test: a server that is not there would do (a real one is used when
  // given; skipMigrations keeps the adapter from creating tables in it should it connect).
  const servers = {
    postgresql: process.env.KAVACH_TEST_PG_URL ?? 'postgresql://kavach@127.0.0.1:9/none',
    mysql: process.env.KAVACH_TEST_MYSQL_URL ?? 'mysql://kavach@127.0.0.1:9/none',
  }
  const withParam = (base: string, param: string) => `${base}${base.includes('?') ? '&' : '?'}${param}=1e300`
  const cases = [
    ...['socket_timeout', 'connection_limit'].map((param) => ({ provider: 'sqlite', param, url: withParam(`file:${path.join(dir, `url-${param}.db`)}`, param) })),
    ...['connect_timeout', 'pool_timeout', 'socket_timeout', 'connection_limit'].flatMap((param) =>
      (['postgresql', 'mysql'] as const).map((p) => ({ provider: p, param, url: withParam(servers[p], param) })),
    ),
  ]
  it.each(cases)('$provider: $param=1e300', ({ param, url }) => {
    const run = inChild(
      `let db
       try { db = createAdapter(URL, { skipMigrations: true }) } catch (error) { return { threw: describeError(error) } }
       // Accepted: what the first call does then (a hang or an abort is what issue 11 saw).
       const first = await within(db.findUserById('x'), 3000, 'the first call')
       return { accepted: true, first }`,
      url,
    )
    expectSurvived(run, `createAdapter('…?${param}=1e300')`)
    expect(run.result.threw, `createAdapter accepted ${param}=1e300; then ${JSON.stringify(run.result.first)}`).toBeDefined()
    expect(run.result.threw.message).toContain(param)
  })
})

// ---- item 3: a Date beyond range inside a Json value -------------------------------------------

describe('a Date out of range inside a Json value (item 3)', () => {
  it('is rejected on create and update, at the root and deep inside arrays, and the adapter goes on', async () => {
    const run = inChild(
      `const db = createAdapter(URL)
       const user = (id, metadata) => ({ id, email: id + '@example.com', createdAt: T0, updatedAt: T0, metadata })
       await db.createUser(user('keeper', { kept: true }))
       const steps = {}
       steps.createRoot = await within(db.createUser(user('u-root', new Date(8.64e15))), 5000)
       steps.createDeep = await within(db.createUser(user('u-deep', { a: [1, { b: [new Date(8.64e15)] }] })), 5000)
       steps.updateDeep = await within(db.updateUser('keeper', { metadata: [[new Date(8.64e15)]] }), 5000)
       steps.inTransaction = await within(db.transaction((tx) => tx.createUser(user('u-tx', [new Date(8.64e15)]))), 5000)
       // Prisma 7 stores this one (measured); either way it must not stop the adapter.
       steps.createMin = await within(db.createUser(user('u-min', { a: [new Date(-8.64e15)] })), 5000)
       const keeper = await within(db.findUserById('keeper'), 5000)
       const written = await within(db.createUser(user('u-after', { fine: 1 })), 5000, 'a create afterwards')
       const found = await within(db.findUserById('u-after'), 5000, 'a find afterwards')
       const leaked = await within(Promise.all(['u-root', 'u-deep', 'u-tx'].map((id) => db.findUserById(id))), 5000)
       const closed = await within(db.close(), 5000, 'close()')
       return { steps, keeperMetadata: keeper.value && keeper.value.metadata, written: !!written.value || written, found: found.value ? found.value.id : found, leaked: leaked.value ? leaked.value.filter(Boolean).map((u) => u.id) : leaked, closed }`,
      await childUrl(),
    )
    expectSurvived(run, 'createUser/updateUser with new Date(8.64e15) in metadata')
    const { steps, keeperMetadata, written, found, leaked, closed } = run.result
    for (const step of ['createRoot', 'createDeep', 'updateDeep', 'inTransaction']) {
      expect(steps[step].error, `${step} did not reject: ${JSON.stringify(steps[step])}`).toBeDefined()
      expect(steps[step].error.name, `${step}: ${steps[step].error.message}`).toBe('PrismaClientValidationError')
      expect(steps[step].error.message, step).toContain('metadata')
    }
    const method = { createRoot: 'createUser', createDeep: 'createUser', updateDeep: 'updateUser', inTransaction: 'createUser' } as const
    for (const [step, name] of Object.entries(method)) expect(steps[step].error.message, step).toContain(`${name}()`)
    if (steps.createMin.error) {
      expect(steps.createMin.error.name).toBe('PrismaClientValidationError')
      expect(steps.createMin.error.message).toContain('metadata')
    }
    expect(keeperMetadata, 'the update that was refused changed the row').toEqual({ kept: true })
    expect(written, 'a create after the refused ones').toBe(true)
    expect(found, 'a find after the refused ones').toBe('u-after')
    expect(leaked, 'rows of refused creates').toEqual([])
    expect(closed.hang ?? closed.error, 'close() resolves').toBeUndefined()
  })
})

// ---- item 6: unknown options of createAdapter ---------------------------------------------------

describe('createAdapter refuses unknown options by name (item 6)', () => {
  const open = (options: any) => {
    let adapter: any
    try {
      adapter = createAdapter(':memory:', options)
    } catch (error) {
      return error as Error
    }
    void adapter.close()
    return undefined
  }

  it('{ skipMigration: true } (one letter short) throws naming `skipMigration`', () => {
    const error = open({ skipMigration: true })
    expect(error, 'createAdapter accepted { skipMigration: true } and would create the tables').toBeInstanceOf(Error)
    expect(error!.message).toMatch(/skipMigration(?!s)/)
  })

  it('the error for { skipMigration: true } points to `skipMigrations`', () => {
    const error = open({ skipMigration: true })
    expect(error, 'createAdapter accepted { skipMigration: true }').toBeInstanceOf(Error)
    expect(error!.message).toContain('skipMigrations')
  })

  it.each([['bogus', { bogus: 1 }], ['timestampformat', { timestampformat: 'iso8601' }], ['skip_migrations', { skip_migrations: true }]])('unknown option `%s` throws naming it', (name, options) => {
    const error = open(options)
    expect(error, `createAdapter accepted ${JSON.stringify(options)}`).toBeInstanceOf(Error)
    expect(error!.message).toContain(name)
  })

  it('the known options still pass', () => {
    expect(open({ skipMigrations: true, timestampFormat: 'iso8601' })).toBeUndefined()
    expect(open({})).toBeUndefined()
    expect(open(undefined)).toBeUndefined()
  })

  it.skipIf(onServer)('a refused option creates nothing: no tables in the file', () => {
    const file = path.join(dir, 'typo.db')
    const run = inChild(
      `let db
       try { db = createAdapter(URL, { skipMigration: true }) } catch (error) { return { threw: describeError(error) } }
       await within(db.listAgents(), 5000)
       await within(db.close(), 5000)
       return { accepted: true }`,
      `file:${file}`,
    )
    expectSurvived(run, 'createAdapter(file, { skipMigration: true })')
    if (fs.existsSync(file)) {
      const Database = require('better-sqlite3')
      const raw = new Database(file, { readonly: true })
      const tables = raw.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'kavach_%'").pluck().get()
      raw.close()
      expect(tables, 'kavach_* tables created although the caller asked (with a typo) for none').toBe(0)
    }
    expect(run.result.threw).toBeDefined()
  })
})

// ---- transaction options refused by name (item 6), in process -----------------------------------

describe('transaction() refuses unknown and malformed options by name', () => {
  const db = adapterPerSuite()
  const refused = async (options: any) => {
    let ran = false
    const error = await db
      .transaction(async () => {
        ran = true
      }, options)
      .then(() => undefined, (e) => e)
    return { error, ran }
  }
  it.each([['timeOut', { timeOut: 5000 }], ['maxwait', { maxwait: 10 }], ['isolation', { isolation: 'Serializable' }], ['bogus', { timeout: 5000, bogus: true }]])(
    'unknown option `%s`',
    async (name, options) => {
      const { error, ran } = await refused(options)
      expect(error, `transaction(fn, ${JSON.stringify(options)}) resolved`).toBeInstanceOf(Error)
      expect(error.name).toBe('PrismaClientValidationError')
      expect(error.message).toContain(`\`${name}\``)
      expect(ran).toBe(false)
    },
  )
  it.each([
    ['timeout', NaN],
    ['timeout', -1],
    ['timeout', '5000'],
    ['maxWait', -1],
    ['maxWait', NaN],
    ['maxWait', 'soon'],
    ['isolationLevel', 'bogus'],
    ['isolationLevel', 5],
  ])('`%s`: %s', async (option, value) => {
    const { error, ran } = await refused({ [option]: value })
    expect(error, `transaction(fn, { ${option}: ${String(value)} }) resolved`).toBeInstanceOf(Error)
    expect(error.name).toBe('PrismaClientValidationError')
    expect(error.message).toContain(option)
    expect(ran).toBe(false)
  })
})

// ---- item 7: lookups by a secret are exact, byte for byte ------------------------------------------

describe('lookups by a secret match it exactly: no case, accent or trailing-space folding (item 7)', () => {
  const db = adapterPerSuite()
  let n = 0
  /** A secret of its own per test (they share a database), and the strings a collation folds into it. */
  const secret = () => `tokhash-abc-${++n}`
  const near = (s: string) => [s.toUpperCase(), `${s} `, `${s[0].toUpperCase()}${s.slice(1)}`, s.replace('a', 'à'), `${s}\t`]
  const soon = () => new Date(Date.now() + 3_600_000)
  const lookups: { name: string; create: (secret: string) => Promise<unknown>; find: (secret: string) => Promise<any> }[] = [
    { name: 'findAgentByTokenHash', create: (s) => db.createAgent(make.agent({ tokenHash: s })), find: (s) => db.findAgentByTokenHash(s) },
    { name: 'findApiKeyByHash', create: (s) => db.createApiKey(make.apiKey({ keyHash: s })), find: (s) => db.findApiKeyByHash(s) },
    { name: 'findJwtRefreshToken', create: (s) => db.createJwtRefreshToken(make.jwtRefreshToken({ tokenHash: s })), find: (s) => db.findJwtRefreshToken(s) },
    { name: 'findOAuthAccessToken', create: (s) => db.createOAuthAccessToken(make.oauthAccessToken({ accessToken: s })), find: (s) => db.findOAuthAccessToken(s) },
    { name: 'findOAuthRefreshToken', create: (s) => db.createOAuthAccessToken(make.oauthAccessToken({ refreshToken: s })), find: (s) => db.findOAuthRefreshToken(s) },
    { name: 'findOAuthAuthorizationCode', create: (s) => db.createOAuthAuthorizationCode(make.oauthCode({ code: s })), find: (s) => db.findOAuthAuthorizationCode(s) },
    { name: 'findMagicLinkByToken', create: (s) => db.createMagicLink({ id: uid('ml'), email: 'a@example.com', token: s, expiresAt: soon(), createdAt: T0 }), find: (s) => db.findMagicLinkByToken(s) },
    { name: 'consumeMagicLink', create: (s) => db.createMagicLink({ id: uid('ml'), email: 'a@example.com', token: s, expiresAt: soon(), createdAt: T0 }), find: (s) => db.consumeMagicLink(s) },
    { name: 'findOneTimeTokenByHash', create: (s) => db.createOneTimeToken(oneTimeToken(s)), find: (s) => db.findOneTimeTokenByHash(s) },
    { name: 'consumeOneTimeToken', create: (s) => db.createOneTimeToken(oneTimeToken(s)), find: (s) => db.consumeOneTimeToken(s, 'login') },
    { name: 'findOidcAuthCodeByHash', create: (s) => db.createOidcAuthCode(oidcCode(s)), find: (s) => db.findOidcAuthCodeByHash(s) },
    { name: 'consumeOidcAuthCode', create: (s) => db.createOidcAuthCode(oidcCode(s)), find: (s) => db.consumeOidcAuthCode(s) },
    { name: 'findOidcRefreshTokenByHash', create: (s) => db.createOidcRefreshToken({ id: uid('ort'), tokenHash: s, clientId: 'c', userId: 'u', scopes: 'openid', expiresAt: soon(), createdAt: T0 }), find: (s) => db.findOidcRefreshTokenByHash(s) },
    { name: 'findPasskeyChallenge', create: (s) => db.createPasskeyChallenge({ id: uid('pc'), challenge: s, type: 'authentication', expiresAt: soon(), createdAt: T0 }), find: (s) => db.findPasskeyChallenge(s) },
    { name: 'findPasskeyCredentialByCredentialId', create: (s) => db.createPasskeyCredential({ id: uid('cred'), userId: 'u', credentialId: s, publicKey: 'pk', createdAt: T0, lastUsedAt: T0 }), find: (s) => db.findPasskeyCredentialByCredentialId(s) },
    { name: 'findEphemeralSessionByTokenHash', create: (s) => db.createEphemeralSession({ id: uid('es'), agentId: 'a', ownerId: 'u', tokenHash: s, expiresAt: soon(), auditGroupId: 'g', createdAt: T0, updatedAt: T0 }), find: (s) => db.findEphemeralSessionByTokenHash(s) },
  ]
  function oneTimeToken(tokenHash: string) {
    return { id: uid('ott'), tokenHash, purpose: 'login', identifier: 'a@example.com', expiresAt: soon(), createdAt: T0 }
  }
  function oidcCode(codeHash: string) {
    return { id: uid('oac'), codeHash, clientId: 'c', userId: 'u', redirectUri: 'https://app.example/cb', scopes: 'openid', expiresAt: soon(), createdAt: T0 }
  }

  it.each(lookups)(`$name(…) finds only its secret itself, e.g. not 'TOKHASH-ABC' for 'tokhash-abc' (${provider})`, async ({ create, find }) => {
    const s = secret()
    await create(s)
    for (const other of near(s)) expect(await find(other), `${JSON.stringify(other)} matched ${JSON.stringify(s)}`).toBeNull()
    // Last, since the consume* methods use the row up.
    expect(await find(s)).not.toBeNull()
  })
})
