// The methods for the KavachOS tables @kavachos/prisma leaves out: every one exercised
// generically from the method table (create, find, list, update, delete, expiry), then
// the domain operations — "exactly once" consumption under 50 concurrent callers,
// atomic increments, guarded counters, ranges — on every provider the suite covers.
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { adapterPerTest, T0 } from './fixtures'

const binding = createRequire(import.meta.url)('../binding.js')
const allMethods: any[] = JSON.parse(binding.methodsJson())
const models: any[] = JSON.parse(binding.schemaJson())
const TS_ADAPTER_METHODS = 65
const methods = allMethods.slice(TS_ADAPTER_METHODS)
const modelNames = [...new Set(methods.map((m) => m.model))]

const db = adapterPerTest()
const call = (name: string, ...args: unknown[]): Promise<any> => (db as any)[name](...args)

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the call to reject')
}

const HOUR = 3_600_000
let serial = 0
/** A valid create input for a model, derived from its declaration. */
function valid(modelName: string, over: Record<string, unknown> = {}) {
  const model = models.find((m) => m.name === modelName)
  const n = ++serial
  const input: Record<string, unknown> = {}
  for (const f of model.fields) {
    if (f.optional || f.hasDefault) continue
    input[f.name] = {
      String: `${f.name}-${n}`,
      Int: 0,
      Boolean: false,
      DateTime: /expires/i.test(f.name) ? new Date(Date.now() + HOUR) : T0,
      Json: { n, list: [1, 'two'] },
    }[f.type as string]
  }
  return { ...input, ...over }
}
const methodsOf = (model: string, shape: string) => methods.filter((m) => m.model === model && m.shape === shape)
const createOf = (model: string) => (methodsOf(model, 'create')[0] ?? methodsOf(model, 'upsert')[0]).name as string
const keyArgs = (m: any, row: any) => m.args.filter((a: any) => a.kind === 'key').map((a: any) => row[a.field])

it('covers every model that @kavachos/prisma leaves out', () => {
  expect(modelNames).toHaveLength(21)
  expect(new Set(allMethods.map((m) => m.model)).size).toBe(models.length)
})

describe.each(modelNames)('%s', (model) => {
  it('creates a row with every field and finds it through every lookup', async () => {
    const input = valid(model)
    const row = await call(createOf(model), input)
    for (const [k, v] of Object.entries(input)) expect(row[k]).toEqual(v)
    const fields = models.find((m) => m.name === model).fields
    expect(Object.keys(row)).toEqual(fields.map((f: any) => f.name))
    for (const m of methodsOf(model, 'findOne')) {
      expect(await call(m.name, ...keyArgs(m, row)), m.name).toEqual(row)
      expect(await call(m.name, ...keyArgs(m, row).map(() => 'missing')), m.name).toBeNull()
    }
    for (const m of methodsOf(model, 'findMany')) {
      expect(await call(m.name, ...keyArgs(m, row)), m.name).toContainEqual(row)
    }
  })

  it('updates given fields and refuses a missing row with P2025', async () => {
    const row = await call(createOf(model), valid(model))
    for (const m of methodsOf(model, 'update')) {
      const fields = models.find((x) => x.name === model).fields
      const target = fields.find((f: any) => f.type === 'String' && !f.id && !f.unique && !m.args.some((a: any) => a.field === f.name))
      const updated = await call(m.name, ...keyArgs(m, row), { [target.name]: 'changed' })
      expect(updated, m.name).toEqual({ ...row, [target.name]: 'changed' })
      const error = await rejection(call(m.name, ...keyArgs(m, row).map(() => 'missing'), { [target.name]: 'x' }))
      expect(error.code, m.name).toBe('P2025')
    }
  })

  it('deletes (P2025 once gone) and deletes many (never failing)', async () => {
    for (const m of methodsOf(model, 'delete')) {
      const row = await call(createOf(model), valid(model))
      expect(await call(m.name, ...keyArgs(m, row))).toBeUndefined()
      expect((await rejection(call(m.name, ...keyArgs(m, row)))).code, m.name).toBe('P2025')
    }
    for (const m of methodsOf(model, 'deleteMany').filter((x) => x.args.length > 0)) {
      const row = await call(createOf(model), valid(model))
      await call(m.name, ...keyArgs(m, row))
      await call(m.name, ...keyArgs(m, row))
      for (const find of methodsOf(model, 'findOne')) {
        expect(await call(find.name, ...keyArgs(find, row)), `${m.name} then ${find.name}`).toBeNull()
      }
    }
  })

  it('deleteExpired* removes only expired rows and counts them', async () => {
    for (const m of methodsOf(model, 'deleteMany').filter((x) => x.args.length === 0)) {
      await call(createOf(model), valid(model))
      await call(createOf(model), valid(model, { expiresAt: new Date(Date.now() - 1000) }))
      expect(await call(m.name), m.name).toBe(1)
      expect(await call(m.name), m.name).toBe(0)
    }
  })

  it('rejects bad input naming the method and the field, writing nothing', async () => {
    const create = createOf(model)
    const error = await rejection(call(create, { ...valid(model), bogus: true }))
    expect(error.name).toBe('PrismaClientValidationError')
    expect(error.message).toContain(`${create}()`)
    expect(error.message).toContain('`bogus`')
    const required = Object.keys(valid(model))[1]
    const missing = await rejection(call(create, { ...valid(model), [required]: undefined }))
    expect(missing.message).toContain(`\`${required}\``)
  })
})

describe('exactly once', () => {
  const consumers: [string, string, (row: any) => unknown[], Record<string, unknown>][] = [
    ['KavachMagicLink', 'consumeMagicLink', (r) => [r.token], {}],
    ['KavachOneTimeToken', 'consumeOneTimeToken', (r) => [r.tokenHash, r.purpose], {}],
    ['KavachOidcAuthCode', 'consumeOidcAuthCode', (r) => [r.codeHash], {}],
    ['KavachOidcRefreshToken', 'revokeOidcRefreshToken', (r) => [r.id], {}],
  ]
  it.each(consumers)('%s: 50 concurrent %s calls, exactly one gets the row', async (model, method, args) => {
    const row = await call(createOf(model), valid(model))
    const results = await Promise.all(Array.from({ length: 50 }, () => call(method, ...args(row))))
    const winners = results.filter((r) => r !== null)
    expect(winners).toHaveLength(1)
    const flag = method.startsWith('revoke') ? 'revoked' : 'used'
    expect(winners[0]).toEqual({ ...row, [flag]: true })
    expect(await call(method, ...args(row))).toBeNull()
  })

  it('an expired magic link or token cannot be consumed; a wrong purpose neither', async () => {
    const link = await call('createMagicLink', valid('KavachMagicLink', { expiresAt: new Date(Date.now() - 1) }))
    expect(await call('consumeMagicLink', link.token)).toBeNull()
    expect(await call('consumeMagicLink', 'no-such-token')).toBeNull()
    const token = await call('createOneTimeToken', valid('KavachOneTimeToken', { purpose: 'reset' }))
    expect(await call('consumeOneTimeToken', token.tokenHash, 'verify-email')).toBeNull()
    expect(await call('consumeOneTimeToken', token.tokenHash, 'reset')).toMatchObject({ used: true })
  })

  it('revokes outstanding one-time tokens and OIDC refresh tokens in bulk, counting them', async () => {
    await call('createOneTimeToken', valid('KavachOneTimeToken', { identifier: 'me@x', purpose: 'login' }))
    await call('createOneTimeToken', valid('KavachOneTimeToken', { identifier: 'me@x', purpose: 'login' }))
    await call('createOneTimeToken', valid('KavachOneTimeToken', { identifier: 'me@x', purpose: 'other' }))
    expect(await call('revokeOneTimeTokens', 'me@x', 'login')).toBe(2)
    expect(await call('revokeOneTimeTokens', 'me@x', 'login')).toBe(0)
    await call('createOidcRefreshToken', valid('KavachOidcRefreshToken', { userId: 'u1' }))
    await call('createOidcRefreshToken', valid('KavachOidcRefreshToken', { userId: 'u1' }))
    expect(await call('revokeOidcRefreshTokensByUser', 'u1')).toBe(2)
    expect(await call('revokeOidcRefreshTokensByUser', 'u1')).toBe(0)
  })
})

describe('counters', () => {
  it('increments OTP and phone attempts atomically', async () => {
    for (const [model, method] of [
      ['KavachEmailOtp', 'incrementEmailOtpAttempts'],
      ['KavachPhoneVerification', 'incrementPhoneVerificationAttempts'],
    ]) {
      const row = await call(createOf(model), valid(model))
      expect(row.attempts).toBe(0)
      await Promise.all(Array.from({ length: 20 }, () => call(method, row.id)))
      expect((await call(method, row.id)).attempts).toBe(21)
      expect((await rejection(call(method, 'missing'))).code).toBe('P2025')
    }
  })

  it('consumes ephemeral-session actions up to maxActions, only while active and unexpired', async () => {
    const session = await call('createEphemeralSession', valid('KavachEphemeralSession', { maxActions: 3 }))
    const results = await Promise.all(Array.from({ length: 10 }, () => call('consumeEphemeralSessionAction', session.id)))
    expect(results.filter((r) => r !== null).map((r) => r.actionsUsed).sort()).toEqual([1, 2, 3])
    const unlimited = await call('createEphemeralSession', valid('KavachEphemeralSession'))
    expect((await call('consumeEphemeralSessionAction', unlimited.id)).actionsUsed).toBe(1)
    await call('updateEphemeralSession', unlimited.id, { status: 'revoked' })
    expect(await call('consumeEphemeralSessionAction', unlimited.id)).toBeNull()
    const stale = await call('createEphemeralSession', valid('KavachEphemeralSession', { ownerId: 'o', expiresAt: new Date(Date.now() - 1) }))
    expect(await call('consumeEphemeralSessionAction', stale.id)).toBeNull()
    expect(await call('listActiveEphemeralSessionsByOwner', 'o')).toEqual([])
    expect(await call('expireEphemeralSessions')).toBe(1)
    expect((await call('findEphemeralSessionById', stale.id)).status).toBe('expired')
  })
})

describe('queries', () => {
  it('finds the newest active OTP, the last login, and pages login history newest first', async () => {
    await call('createEmailOtp', valid('KavachEmailOtp', { email: 'a@x', createdAt: new Date(T0.getTime() + 1) }))
    const newest = await call('createEmailOtp', valid('KavachEmailOtp', { email: 'a@x', createdAt: new Date(T0.getTime() + 2) }))
    await call('createEmailOtp', valid('KavachEmailOtp', { email: 'a@x', createdAt: new Date(T0.getTime() + 3), expiresAt: new Date(Date.now() - 1) }))
    expect(await call('findActiveEmailOtp', 'a@x')).toEqual(newest)
    for (let i = 0; i < 5; i++) {
      await call('createLoginHistory', valid('KavachLoginHistory', { id: `login-${i}`, userId: 'u', timestamp: new Date(T0.getTime() + i) }))
    }
    expect((await call('findLastLogin', 'u')).id).toBe('login-4')
    expect((await call('listLoginHistoryByUser', 'u', { limit: 2, offset: 1 })).map((l: any) => l.id)).toEqual(['login-3', 'login-2'])
    expect(await call('listLoginHistoryByUser', 'u')).toHaveLength(5)
  })

  it('lists cost events of an agent within a time range, oldest first', async () => {
    for (let i = 0; i < 5; i++) {
      await call('createCostEvent', valid('KavachCostEvent', { id: `cost-${i}`, agentId: 'a', costMicros: 10 * i, recordedAt: new Date(T0.getTime() + i * HOUR) }))
    }
    const range = await call('listCostEventsByAgent', 'a', { since: new Date(T0.getTime() + HOUR), until: new Date(T0.getTime() + 3 * HOUR) })
    expect(range.map((e: any) => e.id)).toEqual(['cost-1', 'cost-2', 'cost-3'])
    expect(range[0]).toMatchObject({ currency: 'USD', inputTokens: null })
    expect(await call('listCostEventsByAgent', 'other')).toEqual([])
  })

  it('upserts TOTP by user and finds a trusted device only while unexpired', async () => {
    const totp = valid('KavachTotp', { userId: 'u' })
    expect(await call('upsertTotp', totp)).toMatchObject({ userId: 'u', enabled: false })
    const replaced = await call('upsertTotp', { ...totp, secret: 'new', enabled: true, updatedAt: new Date(T0.getTime() + 1) })
    expect(replaced).toMatchObject({ secret: 'new', enabled: true })
    expect(await call('findTotpByUserId', 'u')).toEqual(replaced)
    const device = await call('createTrustedDevice', valid('KavachTrustedDevice', { userId: 'u', fingerprint: 'fp' }))
    expect(await call('findTrustedDevice', 'u', 'fp')).toEqual(device)
    await call('updateTrustedDevice', device.id, { expiresAt: new Date(Date.now() - 1) })
    expect(await call('findTrustedDevice', 'u', 'fp')).toBeNull()
  })

  it('runs inside transactions: a rolled-back consumption leaves the token usable', async () => {
    const link = await call('createMagicLink', valid('KavachMagicLink'))
    await db
      .transaction(async (tx: any) => {
        expect(await tx.consumeMagicLink(link.token)).toMatchObject({ used: true })
        throw new Error('abort')
      })
      .catch(() => {})
    expect(await call('consumeMagicLink', link.token)).toMatchObject({ used: true })
  })
})
