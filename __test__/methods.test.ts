// Every adapter method: found, not found, duplicate, and the semantics the TS adapter
// defines (filters, orderings, defaults, counts, derived ids).
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { adapterPerTest, at, make, provider, T0 } from './fixtures'

const db = adapterPerTest()

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the call to reject')
}

// One row per model the TS adapter creates: create, find by each lookup, duplicate id.
const crud = [
  { model: 'KavachUser', create: 'createUser', make: make.user, finds: [['findUserById', 'id'], ['findUserByEmail', 'email']] },
  { model: 'KavachAgent', create: 'createAgent', make: make.agent, finds: [['findAgentById', 'id'], ['findAgentByTokenHash', 'tokenHash']] },
  { model: 'KavachDelegationChain', create: 'createDelegationChain', make: make.delegationChain, finds: [['findDelegationChain', 'id']] },
  { model: 'KavachSession', create: 'createSession', make: make.session, finds: [['findSessionById', 'id']] },
  { model: 'KavachOAuthClient', create: 'createOAuthClient', make: make.oauthClient, finds: [['findOAuthClientById', 'clientId']] },
  { model: 'KavachOAuthAccessToken', create: 'createOAuthAccessToken', make: make.oauthAccessToken, finds: [['findOAuthAccessToken', 'accessToken'], ['findOAuthRefreshToken', 'refreshToken']] },
  { model: 'KavachOAuthAuthorizationCode', create: 'createOAuthAuthorizationCode', make: make.oauthCode, finds: [['findOAuthAuthorizationCode', 'code']] },
  { model: 'KavachMcpServer', create: 'createMcpServer', make: make.mcpServer, finds: [['findMcpServerByEndpoint', 'endpoint']] },
  { model: 'KavachApiKey', create: 'createApiKey', make: make.apiKey, finds: [['findApiKeyByHash', 'keyHash']] },
  { model: 'KavachOrganization', create: 'createOrg', make: make.org, finds: [['findOrgById', 'id'], ['findOrgBySlug', 'slug']] },
  { model: 'KavachOrgInvitation', create: 'createOrgInvitation', make: make.orgInvitation, finds: [['findOrgInvitation', 'id']] },
  { model: 'KavachJwtRefreshToken', create: 'createJwtRefreshToken', make: make.jwtRefreshToken, finds: [['findJwtRefreshToken', 'tokenHash']] },
  { model: 'KavachApprovalRequest', create: 'createApprovalRequest', make: make.approvalRequest, finds: [['findApprovalRequest', 'id']] },
  { model: 'KavachPermission', create: 'createPermission', make: make.permission, finds: [] },
  { model: 'KavachAuditLog', create: 'createAuditLog', make: make.auditLog, finds: [] },
  { model: 'KavachOrgMember', create: 'createOrgMember', make: make.orgMember, finds: [] },
] as const

describe.each(crud)('$create', ({ model, create, make: build, finds }) => {
  it('returns the stored row with every field, Dates as Date and Json parsed', async () => {
    const input = build()
    const row = await (db as any)[create](input)
    for (const [key, value] of Object.entries(input)) expect(row[key]).toEqual(value)
    for (const value of Object.values(row)) expect(value).not.toBeUndefined()
    for (const [method, key] of finds) {
      expect(await (db as any)[method]((input as any)[key])).toEqual(row)
      expect(await (db as any)[method]('missing-value')).toBeNull()
    }
  })

  it('rejects a duplicate id with P2002 naming the model and field', async () => {
    const input = build()
    await (db as any)[create](input)
    const error = await rejection((db as any)[create]({ ...build(), id: input.id }))
    expect(error).toBeInstanceOf(Error)
    expect(error.code).toBe('P2002')
    expect(error.meta).toEqual({ modelName: model, target: ['id'] })
    expect(error.message).toContain('Unique constraint failed on the fields: (`id`)')
  })

  it('rejects an unknown field and writes nothing', async () => {
    const input = { ...build(), bogus: 1 }
    const error = await rejection((db as any)[create](input))
    expect(error.name).toBe('PrismaClientValidationError')
    expect(error.code).toBeUndefined()
    expect(error.message).toContain(`${create}()`)
    expect(error.message).toContain('`bogus`')
    for (const [method, key] of finds) expect(await (db as any)[method]((input as any)[key])).toBeNull()
  })
})

describe('users', () => {
  it('applies schema defaults and nulls', async () => {
    const user = await db.createUser(make.user({ name: undefined }))
    expect(user).toMatchObject({ name: null, banned: false, forcePasswordReset: false, metadata: null, banExpiresAt: null })
  })

  it('rejects a duplicate email with target [email]', async () => {
    await db.createUser(make.user({ email: 'same@example.com' }))
    const error = await rejection(db.createUser(make.user({ email: 'same@example.com' })))
    expect(error.code).toBe('P2002')
    expect(error.meta.target).toEqual(['email'])
  })

  it('updates only the given fields; undefined is ignored, null clears', async () => {
    const user = await db.createUser(make.user({ name: 'Alice', username: 'alice' }))
    const updated = await db.updateUser(user.id, { name: null, username: undefined, stripeCustomerId: 'cus_1', updatedAt: at(1000) })
    expect(updated).toEqual({ ...user, name: null, stripeCustomerId: 'cus_1', updatedAt: at(1000) })
    expect(await db.findUserById(user.id)).toEqual(updated)
    expect(await db.updateUser(user.id, {})).toEqual(updated)
  })

  it('update and delete of a missing row reject with P2025', async () => {
    for (const call of [() => db.updateUser('missing', { name: 'x' }), () => db.updateUser('missing', {}), () => db.deleteUser('missing')]) {
      const error = await rejection(call())
      expect(error.code).toBe('P2025')
      expect(error.meta.modelName).toBe('KavachUser')
    }
  })

  it('deletes and resolves with undefined', async () => {
    const user = await db.createUser(make.user())
    expect(await db.deleteUser(user.id)).toBeUndefined()
    expect(await db.findUserById(user.id)).toBeNull()
  })
})

describe('agents', () => {
  it('listAgents filters on every given field, newest first', async () => {
    const a = await db.createAgent(make.agent({ ownerId: 'o1', status: 'active', createdAt: at(1) }))
    const b = await db.createAgent(make.agent({ ownerId: 'o1', status: 'revoked', createdAt: at(2) }))
    const c = await db.createAgent(make.agent({ ownerId: 'o1', tenantId: 't1', type: 'delegated', createdAt: at(3) }))
    await db.createAgent(make.agent({ ownerId: 'o2', createdAt: at(4) }))
    expect((await db.listAgents({ ownerId: 'o1' })).map((x) => x.id)).toEqual([c.id, b.id, a.id])
    expect((await db.listAgents({ ownerId: 'o1', status: 'active' })).map((x) => x.id)).toEqual([c.id, a.id])
    expect((await db.listAgents({ tenantId: 't1', type: 'delegated' })).map((x) => x.id)).toEqual([c.id])
    expect(await db.listAgents()).toHaveLength(4)
    expect(await db.listAgents({ ownerId: undefined })).toHaveLength(4)
  })

  it('updateAgent revokes; deleteAgent removes', async () => {
    const agent = await db.createAgent(make.agent())
    expect(agent.status).toBe('active')
    expect((await db.updateAgent(agent.id, { status: 'revoked' })).status).toBe('revoked')
    await db.deleteAgent(agent.id)
    expect(await db.findAgentById(agent.id)).toBeNull()
    expect((await rejection(db.deleteAgent(agent.id))).code).toBe('P2025')
  })
})

describe('permissions', () => {
  it('finds by agent and deletes by agent (no error when none match)', async () => {
    const p1 = await db.createPermission(make.permission({ agentId: 'a1' }))
    const p2 = await db.createPermission(make.permission({ agentId: 'a1', constraints: { maxCallsPerHour: 100 } }))
    await db.createPermission(make.permission({ agentId: 'a2' }))
    expect(await db.findPermissionsByAgentId('a1')).toEqual([p1, p2])
    expect(p2.constraints).toEqual({ maxCallsPerHour: 100 })
    await db.deletePermissionsByAgentId('a1')
    await db.deletePermissionsByAgentId('nobody')
    expect(await db.findPermissionsByAgentId('a1')).toEqual([])
    expect(await db.findPermissionsByAgentId('a2')).toHaveLength(1)
  })

  it('deletePermission of a missing id rejects with P2025', async () => {
    expect((await rejection(db.deletePermission('missing'))).meta).toEqual({ modelName: 'KavachPermission', operation: 'a delete' })
  })
})

describe('delegation chains', () => {
  it('lists chains from an agent newest first, defaults depth 1 / maxDepth 3 / active', async () => {
    const old = await db.createDelegationChain(make.delegationChain({ fromAgentId: 'x', createdAt: at(1) }))
    const recent = await db.createDelegationChain(make.delegationChain({ fromAgentId: 'x', createdAt: at(2) }))
    await db.createDelegationChain(make.delegationChain({ fromAgentId: 'y' }))
    expect(old).toMatchObject({ depth: 1, maxDepth: 3, status: 'active' })
    expect((await db.findDelegationChainsByAgent('x')).map((c) => c.id)).toEqual([recent.id, old.id])
    const revoked = await db.updateDelegationChain(old.id, { status: 'revoked' })
    expect(revoked.status).toBe('revoked')
    expect((await rejection(db.updateDelegationChain('missing', { status: 'x' }))).code).toBe('P2025')
  })
})

describe('audit logs', () => {
  it('queries with filters, time range, newest first, limit and offset', async () => {
    for (let i = 0; i < 5; i++) {
      await db.createAuditLog(make.auditLog({ id: `l${i}`, agentId: 'a1', result: i % 2 ? 'denied' : 'allowed', timestamp: at(i * 1000) }))
    }
    await db.createAuditLog(make.auditLog({ id: 'other', agentId: 'a2', userId: 'u2', timestamp: at(10_000) }))
    const ids = async (filter: any) => (await db.queryAuditLogs(filter)).map((l) => l.id)
    expect(await ids({ agentId: 'a1' })).toEqual(['l4', 'l3', 'l2', 'l1', 'l0'])
    expect(await ids({ agentId: 'a1', result: 'denied' })).toEqual(['l3', 'l1'])
    expect(await ids({ since: at(1000), until: at(3000) })).toEqual(['l3', 'l2', 'l1'])
    expect(await ids({ agentId: 'a1', limit: 2, offset: 1 })).toEqual(['l3', 'l2'])
    expect(await ids({ userId: 'u2' })).toEqual(['other'])
    expect(await ids({ since: '2025-01-02T03:04:08.678Z' })).toEqual(['other', 'l4', 'l3'])
  })

  it('defaults to 100 rows', async () => {
    await db.transaction(async (tx) => {
      for (let i = 0; i < 120; i++) await tx.createAuditLog(make.auditLog({ timestamp: at(i) }))
    })
    expect(await db.queryAuditLogs({})).toHaveLength(100)
    expect(await db.queryAuditLogs({ limit: 500 })).toHaveLength(120)
    expect(await db.queryAuditLogs({ offset: 110 })).toHaveLength(10)
  })

  it('keeps parameters as given and optional fields as null', async () => {
    const log = await db.createAuditLog(make.auditLog({ parameters: { repo: 'kavach', n: 2.0, nested: { b: 1, a: [true, null] } } }))
    expect(log).toMatchObject({ reason: null, tokensCost: null, ip: null, userAgent: null })
    expect(log.parameters).toEqual({ repo: 'kavach', n: 2, nested: { b: 1, a: [true, null] } })
    // PostgreSQL's JSONB orders object keys itself (so does Prisma's there).
    expect(Object.keys((log.parameters as any).nested)).toEqual(provider === 'postgresql' ? ['a', 'b'] : ['b', 'a'])
  })

  it('rejects a bad limit naming the filter', async () => {
    const error = await rejection(db.queryAuditLogs({ limit: -1 }))
    expect(error.message).toContain('queryAuditLogs')
    expect(error.message).toContain('`limit`')
  })
})

describe('sessions', () => {
  it('deleteExpiredSessions removes only expired ones and returns the count', async () => {
    const live = await db.createSession(make.session())
    await db.createSession(make.session({ expiresAt: new Date(Date.now() - 1000) }))
    await db.createSession(make.session({ expiresAt: new Date(Date.now() - 60_000) }))
    expect(await db.deleteExpiredSessions()).toBe(2)
    expect(await db.deleteExpiredSessions()).toBe(0)
    expect(await db.findSessionById(live.id)).toEqual(live)
    await db.deleteSession(live.id)
    expect((await rejection(db.deleteSession(live.id))).code).toBe('P2025')
  })
})

describe('rate limits', () => {
  it('upserts under the TS adapter\'s derived id and finds by window', async () => {
    const window = new Date('2025-01-02T03:00:00.000Z')
    const id = createHash('sha256').update(`a1:res:${window.getTime()}`).digest('hex').slice(0, 32)
    const first = await db.upsertRateLimit('a1', 'res', window, 1)
    expect(first).toEqual({ id, agentId: 'a1', resource: 'res', windowStart: window, count: 1 })
    const second = await db.upsertRateLimit('a1', 'res', window, 7)
    expect(second).toEqual({ ...first, count: 7 })
    expect(await db.findRateLimit('a1', 'res', window)).toEqual(second)
    expect(await db.findRateLimit('a1', 'res', new Date(window.getTime() + 1))).toBeNull()
    expect(await db.findRateLimit('a1', 'res', window.toISOString())).toEqual(second)
  })
})

describe('oauth', () => {
  it('clients: defaults, update by clientId, P2025 for unknown clientId', async () => {
    const client = await db.createOAuthClient(make.oauthClient())
    expect(client).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_basic', type: 'confidential', disabled: false, metadata: null })
    const disabled = await db.updateOAuthClient(client.clientId, { disabled: true })
    expect(disabled.disabled).toBe(true)
    expect((await rejection(db.updateOAuthClient('nope', { disabled: true }))).code).toBe('P2025')
  })

  it('access tokens: revoke deletes every match and never fails', async () => {
    const token = await db.createOAuthAccessToken(make.oauthAccessToken())
    await db.revokeOAuthAccessToken(token.accessToken)
    await db.revokeOAuthAccessToken(token.accessToken)
    expect(await db.findOAuthAccessToken(token.accessToken)).toBeNull()
    const dup = make.oauthAccessToken()
    await db.createOAuthAccessToken(dup)
    const error = await rejection(db.createOAuthAccessToken(make.oauthAccessToken({ accessToken: dup.accessToken })))
    expect(error.meta.target).toEqual(['accessToken'])
  })

  it('authorization codes: delete by id, P2025 when gone', async () => {
    const code = await db.createOAuthAuthorizationCode(make.oauthCode({ codeChallenge: 'abc', codeChallengeMethod: 'S256' }))
    expect(code.resource).toBeNull()
    await db.deleteOAuthAuthorizationCode(code.id)
    expect(await db.findOAuthAuthorizationCode(code.code)).toBeNull()
    expect((await rejection(db.deleteOAuthAuthorizationCode(code.id))).meta.modelName).toBe('KavachOAuthAuthorizationCode')
  })
})

describe('mcp servers and api keys', () => {
  it('lists MCP servers oldest first with defaults', async () => {
    const b = await db.createMcpServer(make.mcpServer({ createdAt: at(2) }))
    const a = await db.createMcpServer(make.mcpServer({ createdAt: at(1), authRequired: false, rateLimitRpm: 60 }))
    expect(b).toMatchObject({ authRequired: true, rateLimitRpm: null, status: 'active' })
    expect((await db.listMcpServers()).map((s) => s.id)).toEqual([a.id, b.id])
  })

  it('api keys: list newest first, touch lastUsedAt, delete', async () => {
    const k1 = await db.createApiKey(make.apiKey({ userId: 'u', createdAt: at(1) }))
    const k2 = await db.createApiKey(make.apiKey({ userId: 'u', createdAt: at(2) }))
    expect((await db.listApiKeysByUser('u')).map((k) => k.id)).toEqual([k2.id, k1.id])
    expect(await db.updateApiKeyLastUsed(k1.id, at(99))).toBeUndefined()
    expect((await db.findApiKeyByHash(k1.keyHash))!.lastUsedAt).toEqual(at(99))
    expect((await rejection(db.updateApiKeyLastUsed('missing', at(1)))).code).toBe('P2025')
    await db.deleteApiKey(k1.id)
    expect(await db.listApiKeysByUser('u')).toEqual([k2])
  })
})

describe('organizations', () => {
  it('orgs, members (oldest first, deleteMany-style removal) and invitations', async () => {
    const org = await db.createOrg(make.org())
    expect(await db.findOrgBySlug(org.slug)).toEqual(org)
    const m2 = await db.createOrgMember(make.orgMember({ orgId: org.id, userId: 'u2', joinedAt: at(2) }))
    const m1 = await db.createOrgMember(make.orgMember({ orgId: org.id, userId: 'u1', joinedAt: at(1), role: 'admin' }))
    expect(m2.role).toBe('member')
    expect(await db.listOrgMembers(org.id)).toEqual([m1, m2])
    expect(await db.findOrgMember(org.id, 'u1')).toEqual(m1)
    await db.deleteOrgMember(org.id, 'u1')
    await db.deleteOrgMember(org.id, 'u1')
    expect(await db.findOrgMember(org.id, 'u1')).toBeNull()
    const invite = await db.createOrgInvitation(make.orgInvitation({ orgId: org.id }))
    expect(invite).toMatchObject({ role: 'member', status: 'pending' })
    expect((await db.updateOrgInvitation(invite.id, { status: 'accepted' })).status).toBe('accepted')
    await db.deleteOrg(org.id)
    expect(await db.findOrgById(org.id)).toBeNull()
    expect((await rejection(db.deleteOrg(org.id))).code).toBe('P2025')
    expect((await rejection(db.createOrg(make.org({ slug: org.slug + 'x' })).then(() => db.createOrg(make.org({ slug: org.slug + 'x' }))))).meta.target).toEqual(['slug'])
  })
})

describe('jwt refresh tokens', () => {
  it('marks a token used; P2025 for an unknown id', async () => {
    const token = await db.createJwtRefreshToken(make.jwtRefreshToken())
    expect(token.used).toBe(false)
    expect(await db.markJwtRefreshTokenUsed(token.id)).toBeUndefined()
    expect((await db.findJwtRefreshToken(token.tokenHash))!.used).toBe(true)
    expect((await rejection(db.markJwtRefreshTokenUsed('missing'))).code).toBe('P2025')
  })
})

describe('trust scores', () => {
  it('upserts: creates, then replaces score, level, factors and computedAt', async () => {
    const first = await db.upsertTrustScore(make.trustScore({ agentId: 'ag' }))
    expect(await db.findTrustScore('ag')).toEqual(first)
    const next = { agentId: 'ag', score: 20, level: 'limited', factors: { b: 1, a: {} }, computedAt: at(5) }
    expect(await db.upsertTrustScore(next)).toEqual(next)
    expect(await db.findTrustScore('ag')).toEqual(next)
    expect(await db.findTrustScore('other')).toBeNull()
  })
})

describe('approval requests', () => {
  it('lists pending requests of an agent oldest first', async () => {
    const late = await db.createApprovalRequest(make.approvalRequest({ agentId: 'a', createdAt: at(2) }))
    const early = await db.createApprovalRequest(make.approvalRequest({ agentId: 'a', createdAt: at(1), arguments: { env: 'prod' } }))
    const done = await db.createApprovalRequest(make.approvalRequest({ agentId: 'a', status: 'approved' }))
    expect(late.status).toBe('pending')
    expect((await db.listPendingApprovals('a')).map((r) => r.id)).toEqual([early.id, late.id])
    const approved = await db.updateApprovalRequest(late.id, { status: 'approved', respondedAt: at(9), respondedBy: 'u' })
    expect(approved).toEqual({ ...late, status: 'approved', respondedAt: at(9), respondedBy: 'u' })
    expect((await db.listPendingApprovals('a')).map((r) => r.id)).toEqual([early.id])
    expect(await db.findApprovalRequest(done.id)).toEqual(done)
  })
})

describe('argument checks', () => {
  it('rejects undefined where an id is needed, naming method and argument', async () => {
    for (const [call, method, arg] of [
      [() => (db as any).findAgentById(), 'findAgentById', 'id'],
      [() => (db as any).findAgentByTokenHash(undefined), 'findAgentByTokenHash', 'tokenHash'],
      [() => (db as any).updateUser(undefined, { name: 'x' }), 'updateUser', 'id'],
      [() => (db as any).findOrgMember('o'), 'findOrgMember', 'userId'],
    ] as const) {
      const error = await rejection(call())
      expect(error.name).toBe('PrismaClientValidationError')
      expect(error.message).toContain(`${method}()`)
      expect(error.message).toContain(`\`${arg}\``)
    }
  })

  it('rejects wrong types, missing fields and nulls for required fields', async () => {
    const cases: [() => Promise<unknown>, string][] = [
      [() => db.createAgent(make.agent({ name: 42 })), 'expected a string, got number 42'],
      [() => db.createAgent({ ...make.agent(), tokenHash: undefined } as any), 'missing required field `tokenHash`'],
      [() => db.createAgent(make.agent({ createdAt: 'not a date' })), '`createdAt`'],
      [() => db.createAgent(make.agent({ expiresAt: new Date('x') })), 'invalid Date'],
      [() => db.createUser(make.user({ banned: 'yes' })), 'expected a boolean'],
      [() => db.createAuditLog(make.auditLog({ durationMs: '5' })), 'expected an integer'],
      [() => db.updateUser('u', { email: null }), 'must not be null'],
      [() => db.listAgents({ ownerID: 'x' } as any), 'unknown filter `ownerID`'],
      [() => (db as any).createUser('not an object'), 'must be an object'],
    ]
    for (const [call, text] of cases) {
      const error = await rejection(call())
      expect(error.name).toBe('PrismaClientValidationError')
      expect(error.message).toContain(text)
    }
    expect(await db.listAgents()).toEqual([])
  })

  it('accepts ISO strings for DateTime and truncates fractional Ints like Prisma', async () => {
    const agent = await db.createAgent(make.agent({ createdAt: '2025-01-02T05:04:05.678+02:00' }))
    expect(agent.createdAt).toEqual(T0)
    const log = await db.createAuditLog(make.auditLog({ durationMs: 1.9 }))
    expect(log.durationMs).toBe(1)
    if (provider === 'sqlite') {
      expect((await db.createAuditLog(make.auditLog({ tokensCost: 2 ** 31 }))).tokensCost).toBe(2 ** 31)
    } else {
      // INTEGER is 32-bit on the servers: Prisma's P2020 (value out of range).
      expect((await rejection(db.createAuditLog(make.auditLog({ tokensCost: 2 ** 31 })))).code).toBe('P2020')
    }
  })

  it('Json null is stored and read back as null; BigInt inside Json becomes a string', async () => {
    const user = await db.createUser(make.user({ metadata: null }))
    expect(user.metadata).toBeNull()
    const perm = await db.createPermission(make.permission({ constraints: { big: 10n } }))
    expect(perm.constraints).toEqual({ big: '10' })
  })
})
