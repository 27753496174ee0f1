// The seed documents' flows on in-memory SQLite: users, agents, permissions, audit
// logs, sessions, trust scores, approvals and a transaction — printed as they happen.
import { randomUUID, createHash } from 'node:crypto'
import { createRequire } from 'node:module'

const { createAdapter } = createRequire(import.meta.url)('../index.js')
const kavachDb = createAdapter(process.env.DATABASE_URL ?? ':memory:')
const say = (what, value) => console.log(`${what.padEnd(44)} ${value}`)
const now = () => new Date()

const user = await kavachDb.createUser({ id: randomUUID(), email: 'alice@example.com', name: 'Alice', createdAt: now(), updatedAt: now() })
say('createUser', `${user.email} (banned: ${user.banned})`)
say('findUserByEmail', (await kavachDb.findUserByEmail('alice@example.com'))?.name)
const linked = await kavachDb.updateUser(user.id, { stripeCustomerId: 'cus_abc123' })
say('updateUser (link Stripe customer)', linked.stripeCustomerId)

const tokenHash = createHash('sha256').update('kv_secret_token').digest('hex')
const agent = await kavachDb.createAgent({
  id: randomUUID(), ownerId: user.id, name: 'my-agent', type: 'autonomous',
  tokenHash, tokenPrefix: 'kv_', createdAt: now(), updatedAt: now(),
})
say('createAgent', `${agent.name} status=${agent.status}`)
say('findAgentByTokenHash', (await kavachDb.findAgentByTokenHash(tokenHash))?.id === agent.id ? 'found' : 'missing')
say('listAgents({ ownerId, status: active })', (await kavachDb.listAgents({ ownerId: user.id, status: 'active' })).length)

await kavachDb.createPermission({ id: randomUUID(), agentId: agent.id, resource: 'mcp:github:*', actions: ['read', 'write'], createdAt: now() })
const perms = await kavachDb.findPermissionsByAgentId(agent.id)
say('findPermissionsByAgentId', perms.map((p) => `${p.resource} [${p.actions.join(',')}]`).join('; '))

for (const result of ['allowed', 'denied', 'allowed']) {
  await kavachDb.createAuditLog({
    id: randomUUID(), agentId: agent.id, userId: user.id, action: 'execute',
    resource: 'mcp:github:create_issue', result, durationMs: 42, timestamp: now(),
  })
}
const recent = await kavachDb.queryAuditLogs({ agentId: agent.id, since: new Date(Date.now() - 86_400_000), limit: 50 })
say('queryAuditLogs (last 24 h)', `${recent.length} entries`)
say('queryAuditLogs ({ result: denied })', `${(await kavachDb.queryAuditLogs({ userId: user.id, result: 'denied' })).length} entries`)

const session = await kavachDb.createSession({ id: randomUUID(), userId: user.id, expiresAt: new Date(Date.now() + 7 * 86_400_000), createdAt: now() })
await kavachDb.createSession({ id: randomUUID(), userId: user.id, expiresAt: new Date(Date.now() - 1000), createdAt: now() })
const found = await kavachDb.findSessionById(session.id)
say('findSessionById (valid?)', found && found.expiresAt > new Date() ? 'valid' : 'expired')
say('deleteExpiredSessions', `${await kavachDb.deleteExpiredSessions()} deleted`)

const trust = await kavachDb.upsertTrustScore({ agentId: agent.id, score: 85, level: 'trusted', factors: { successRate: 0.99, age: 30 }, computedAt: now() })
say('upsertTrustScore', `${trust.level} (${trust.score})`)
await kavachDb.upsertTrustScore({ ...trust, score: 40, level: 'limited', computedAt: now() })
say('findTrustScore after recompute', (await kavachDb.findTrustScore(agent.id))?.level)

const request = await kavachDb.createApprovalRequest({
  id: randomUUID(), agentId: agent.id, userId: user.id, action: 'deploy', resource: 'prod',
  expiresAt: new Date(Date.now() + 3_600_000), createdAt: now(),
})
say('listPendingApprovals', (await kavachDb.listPendingApprovals(agent.id)).length)
await kavachDb.updateApprovalRequest(request.id, { status: 'approved', respondedAt: now(), respondedBy: user.id })
say('after updateApprovalRequest (approved)', `${(await kavachDb.listPendingApprovals(agent.id)).length} pending`)

const helper = await kavachDb.transaction(async (tx) => {
  const created = await tx.createAgent({
    id: randomUUID(), ownerId: user.id, name: 'helper-agent', type: 'delegated',
    tokenHash: 'helper-hash', tokenPrefix: 'kv_', createdAt: now(), updatedAt: now(),
  })
  await tx.createPermission({ id: randomUUID(), agentId: created.id, resource: 'mcp:slack:*', actions: ['read'], createdAt: now() })
  return created
})
say('transaction (agent + permission) committed', helper.name)
const failed = await kavachDb
  .transaction(async (tx) => {
    await tx.createAgent({ id: randomUUID(), ownerId: user.id, name: 'doomed', type: 'x', tokenHash: 'd', tokenPrefix: 'kv_', createdAt: now(), updatedAt: now() })
    throw new Error('policy check failed')
  })
  .catch((error) => error.message)
say('transaction that throws', `rolled back (${failed}); agents now ${(await kavachDb.listAgents({ ownerId: user.id })).length}`)

const duplicate = await kavachDb.createUser({ id: randomUUID(), email: 'alice@example.com', createdAt: now(), updatedAt: now() }).catch((e) => e)
say('duplicate email', `${duplicate.code} on ${duplicate.meta.target}`)
const missing = await kavachDb.deleteAgent('no-such-agent').catch((e) => e)
say('delete a missing agent', `${missing.code} (${missing.meta.modelName})`)

await kavachDb.close()
console.log('\nAll flows ran on', process.env.DATABASE_URL ?? 'in-memory SQLite', 'and the adapter closed cleanly.')
