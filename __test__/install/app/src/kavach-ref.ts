// Application code written against @kavachos/prisma's types, calling every method of its
// adapter. The install test type-checks it as is, then a copy whose only change is the
// module name ('@kavachos/prisma' -> 'kavach-native'): the swap must be mechanical.
// The copy also runs (test/swap.spec.ts) on a fresh kavach-native database.
import type {
  AgentFilter,
  AuditLogFilter,
  CreateAgentInput,
  CreateAuditLogInput,
  CreatePermissionInput,
  CreateSessionInput,
  CreateUserInput,
  KavachPrismaAdapter,
  PrismaAgent,
  PrismaApiKey,
  PrismaApprovalRequest,
  PrismaAuditLog,
  PrismaDelegationChain,
  PrismaJwtRefreshToken,
  PrismaMcpServer,
  PrismaOAuthAccessToken,
  PrismaOAuthAuthorizationCode,
  PrismaOAuthClient,
  PrismaOrganization,
  PrismaOrgInvitation,
  PrismaOrgMember,
  PrismaPermission,
  PrismaRateLimit,
  PrismaSession,
  PrismaTrustScore,
  PrismaUser,
} from '@kavachos/prisma'

export interface FlowReport {
  user: PrismaUser
  agent: PrismaAgent
  agents: PrismaAgent[]
  permissions: PrismaPermission[]
  logs: PrismaAuditLog[]
  trust: PrismaTrustScore | null
  txResult: string
  expiredSessions: number
}

const day = 86_400_000

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`flow check failed: ${what}`)
}

export async function runFlow(db: KavachPrismaAdapter, tag: string): Promise<FlowReport> {
  const now = new Date()
  const later = new Date(now.getTime() + day)
  const earlier = new Date(now.getTime() - day)
  const id = (name: string) => `${tag}-${name}`

  // Users
  const userInput: CreateUserInput = { id: id('user'), email: `${tag}@example.com`, name: 'Ada', metadata: { plan: 'pro' }, createdAt: now, updatedAt: now }
  const created: PrismaUser = await db.createUser(userInput)
  check((await db.findUserById(created.id))?.email === userInput.email, 'findUserById')
  check((await db.findUserByEmail(userInput.email))?.id === created.id, 'findUserByEmail')
  const user: PrismaUser = await db.updateUser(created.id, { name: 'Ada Lovelace' })
  check(user.name === 'Ada Lovelace', 'updateUser')

  // Agents
  const agentInput: CreateAgentInput = {
    id: id('agent'),
    ownerId: user.id,
    name: 'deploy-bot',
    type: 'autonomous',
    tokenHash: id('token-hash'),
    tokenPrefix: 'kv_',
    expiresAt: later,
    metadata: { team: 'infra' },
    createdAt: now,
    updatedAt: now,
  }
  await db.createAgent(agentInput)
  check((await db.findAgentById(agentInput.id))?.name === 'deploy-bot', 'findAgentById')
  check((await db.findAgentByTokenHash(agentInput.tokenHash))?.id === agentInput.id, 'findAgentByTokenHash')
  const filter: AgentFilter = { ownerId: user.id, status: 'active' }
  const agents: PrismaAgent[] = await db.listAgents(filter)
  const agent: PrismaAgent = await db.updateAgent(agentInput.id, { name: 'deploy-bot-2' })
  const helper = await db.createAgent({ ...agentInput, id: id('helper'), tokenHash: id('helper-hash'), name: 'helper' })

  // Permissions
  const permissionInput: CreatePermissionInput = { id: id('perm'), agentId: agent.id, resource: 'mcp:github:*', actions: ['read', 'write'], constraints: { maxCallsPerHour: 10 }, createdAt: now }
  await db.createPermission(permissionInput)
  await db.createPermission({ ...permissionInput, id: id('perm-2'), resource: 'mcp:slack:*', constraints: null })
  const permissions: PrismaPermission[] = await db.findPermissionsByAgentId(agent.id)
  check(permissions.length === 2, 'findPermissionsByAgentId')
  await db.deletePermission(id('perm-2'))

  // Delegation
  const chainRow: Omit<PrismaDelegationChain, 'id'> & { id: string } = {
    id: id('chain'),
    fromAgentId: agent.id,
    toAgentId: helper.id,
    permissions: [{ resource: 'mcp:github:*', actions: ['read'] }],
    depth: 1,
    maxDepth: 3,
    status: 'active',
    expiresAt: later,
    createdAt: now,
  }
  await db.createDelegationChain(chainRow)
  check((await db.findDelegationChain(chainRow.id))?.toAgentId === helper.id, 'findDelegationChain')
  check((await db.findDelegationChainsByAgent(agent.id)).length === 1, 'findDelegationChainsByAgent')
  const revoked: PrismaDelegationChain = await db.updateDelegationChain(chainRow.id, { status: 'revoked' })
  check(revoked.status === 'revoked', 'updateDelegationChain')

  // Audit
  const logInput: CreateAuditLogInput = {
    id: id('log'),
    agentId: agent.id,
    userId: user.id,
    action: 'execute',
    resource: 'mcp:github:create_issue',
    parameters: { repo: 'acme/api' },
    result: 'allowed',
    durationMs: 12,
    tokensCost: 40,
    timestamp: now,
  }
  await db.createAuditLog(logInput)
  const auditFilter: AuditLogFilter = { agentId: agent.id, since: earlier, until: later, result: 'allowed', limit: 10, offset: 0 }
  const logs: PrismaAuditLog[] = await db.queryAuditLogs(auditFilter)
  check(logs.length === 1 && logs[0].durationMs === 12, 'queryAuditLogs')

  // Sessions
  const sessionInput: CreateSessionInput = { id: id('session'), userId: user.id, expiresAt: later, metadata: { ip: '127.0.0.1' }, createdAt: now }
  await db.createSession(sessionInput)
  await db.createSession({ ...sessionInput, id: id('stale'), expiresAt: earlier })
  const session: PrismaSession | null = await db.findSessionById(sessionInput.id)
  check(session?.userId === user.id, 'findSessionById')
  const expiredSessions: number = await db.deleteExpiredSessions()
  await db.deleteSession(sessionInput.id)

  // Rate limits
  const windowStart = new Date(Math.floor(now.getTime() / 60_000) * 60_000)
  await db.upsertRateLimit(agent.id, 'mcp:github:*', windowStart, 1)
  const limit: PrismaRateLimit = await db.upsertRateLimit(agent.id, 'mcp:github:*', windowStart, 2)
  check(limit.count === 2 && (await db.findRateLimit(agent.id, 'mcp:github:*', windowStart))?.count === 2, 'rate limits')

  // OAuth
  const client: PrismaOAuthClient = await db.createOAuthClient({
    id: id('client'),
    clientId: id('client-id'),
    clientSecret: null,
    clientName: 'CLI',
    clientUri: null,
    redirectUris: ['http://localhost/callback'],
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    tokenEndpointAuthMethod: 'none',
    type: 'public',
    disabled: false,
    metadata: null,
    createdAt: now,
    updatedAt: now,
  })
  check((await db.findOAuthClientById(client.clientId))?.clientName === 'CLI', 'findOAuthClientById')
  await db.updateOAuthClient(client.clientId, { clientName: 'CLI 2' })
  const token: PrismaOAuthAccessToken = await db.createOAuthAccessToken({
    id: id('at'),
    accessToken: id('access'),
    refreshToken: id('refresh'),
    clientId: client.clientId,
    userId: user.id,
    scopes: 'openid profile',
    resource: null,
    accessTokenExpiresAt: later,
    refreshTokenExpiresAt: later,
    createdAt: now,
  })
  check((await db.findOAuthAccessToken(token.accessToken))?.id === token.id, 'findOAuthAccessToken')
  check((await db.findOAuthRefreshToken(id('refresh')))?.id === token.id, 'findOAuthRefreshToken')
  await db.revokeOAuthAccessToken(token.accessToken)
  const code: PrismaOAuthAuthorizationCode = await db.createOAuthAuthorizationCode({
    id: id('code'),
    code: id('code-value'),
    clientId: client.clientId,
    userId: user.id,
    redirectUri: 'http://localhost/callback',
    scopes: 'openid',
    codeChallenge: 'abc',
    codeChallengeMethod: 'S256',
    resource: null,
    expiresAt: later,
    createdAt: now,
  })
  check((await db.findOAuthAuthorizationCode(code.code))?.id === code.id, 'findOAuthAuthorizationCode')
  await db.deleteOAuthAuthorizationCode(code.id)

  // MCP servers
  const server: PrismaMcpServer = await db.createMcpServer({
    id: id('mcp'),
    name: 'github',
    endpoint: `https://mcp.example.com/${tag}`,
    tools: ['create_issue'],
    authRequired: true,
    rateLimitRpm: 60,
    status: 'active',
    createdAt: now,
    updatedAt: now,
  })
  check((await db.findMcpServerByEndpoint(server.endpoint))?.id === server.id, 'findMcpServerByEndpoint')
  check((await db.listMcpServers()).some((s) => s.id === server.id), 'listMcpServers')

  // API keys
  const key: PrismaApiKey = await db.createApiKey({
    id: id('key'),
    userId: user.id,
    name: 'ci',
    keyHash: id('key-hash'),
    keyPrefix: 'kk_',
    permissions: ['agents:read'],
    expiresAt: null,
    lastUsedAt: null,
    createdAt: now,
  })
  check((await db.findApiKeyByHash(key.keyHash))?.id === key.id, 'findApiKeyByHash')
  check((await db.listApiKeysByUser(user.id)).length === 1, 'listApiKeysByUser')
  await db.updateApiKeyLastUsed(key.id, now)
  await db.deleteApiKey(key.id)

  // Organizations
  const org: PrismaOrganization = await db.createOrg({ id: id('org'), name: 'Acme', slug: `acme-${tag}`, ownerId: user.id, metadata: null, createdAt: now, updatedAt: now })
  check((await db.findOrgById(org.id))?.slug === org.slug && (await db.findOrgBySlug(org.slug))?.id === org.id, 'find org')
  const member: PrismaOrgMember = await db.createOrgMember({ id: id('member'), orgId: org.id, userId: user.id, role: 'owner', joinedAt: now })
  check((await db.findOrgMember(org.id, user.id))?.id === member.id && (await db.listOrgMembers(org.id)).length === 1, 'org members')
  const invitation: PrismaOrgInvitation = await db.createOrgInvitation({
    id: id('invite'),
    orgId: org.id,
    email: 'bob@example.com',
    role: 'member',
    invitedBy: user.id,
    status: 'pending',
    expiresAt: later,
    createdAt: now,
  })
  check((await db.findOrgInvitation(invitation.id))?.email === 'bob@example.com', 'findOrgInvitation')
  await db.updateOrgInvitation(invitation.id, { status: 'accepted' })
  await db.deleteOrgMember(org.id, user.id)
  await db.deleteOrg(org.id)

  // JWT refresh tokens
  const refresh: PrismaJwtRefreshToken = await db.createJwtRefreshToken({ id: id('jwt'), tokenHash: id('jwt-hash'), userId: user.id, used: false, expiresAt: later, createdAt: now })
  await db.markJwtRefreshTokenUsed(refresh.id)
  check((await db.findJwtRefreshToken(refresh.tokenHash))?.used === true, 'markJwtRefreshTokenUsed')

  // Trust scores
  await db.upsertTrustScore({ agentId: agent.id, score: 80, level: 'trusted', factors: { age: 1 }, computedAt: now })
  const trust: PrismaTrustScore | null = await db.findTrustScore(agent.id)

  // Approvals
  const approval: PrismaApprovalRequest = await db.createApprovalRequest({
    id: id('approval'),
    agentId: agent.id,
    userId: user.id,
    action: 'deploy',
    resource: 'prod',
    arguments: { version: '1.2.3' },
    status: 'pending',
    expiresAt: later,
    respondedAt: null,
    respondedBy: null,
    createdAt: now,
  })
  check((await db.findApprovalRequest(approval.id))?.status === 'pending', 'findApprovalRequest')
  check((await db.listPendingApprovals(agent.id)).length === 1, 'listPendingApprovals')
  await db.updateApprovalRequest(approval.id, { status: 'approved', respondedAt: now, respondedBy: user.id })

  // Transactions
  const txResult: string = await db.transaction(async (tx: KavachPrismaAdapter) => {
    await tx.deletePermissionsByAgentId(agent.id)
    return 'committed'
  })

  await db.deleteAgent(helper.id)
  const report: FlowReport = { user, agent, agents, permissions, logs, trust, txResult, expiredSessions }
  await db.deleteAgent(agent.id)
  await db.deleteUser(user.id)
  return report
}
