// Valid create inputs for every model the adapter's methods reach, and a fresh,
// empty database per test on the provider under test (KAVACH_TEST_PROVIDER):
// in-memory SQLite, a fresh PostgreSQL schema, or a fresh MySQL/MariaDB database.
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import { createAdapter } from '../index.js'
import type { KavachNativeAdapter } from '../index.js'

export const T0 = new Date('2025-01-02T03:04:05.678Z')
export const at = (offsetMs: number) => new Date(T0.getTime() + offsetMs)

let counter = 0
export const uid = (prefix: string) => `${prefix}-${++counter}`

export type Provider = 'sqlite' | 'postgresql' | 'mysql'
export const provider = (process.env.KAVACH_TEST_PROVIDER ?? 'sqlite') as Provider
export const onServer = provider !== 'sqlite'

export function serverUrl(which: Provider = provider): string {
  const url = which === 'postgresql' ? process.env.KAVACH_TEST_PG_URL : process.env.KAVACH_TEST_MYSQL_URL
  if (!url) throw new Error(`no URL for ${which}: set KAVACH_TEST_PG_URL / KAVACH_TEST_MYSQL_URL`)
  return url
}

/**
 * The server URL the adapter under test connects to: `serverUrl()`, except in the PgBouncer
 * projects (KAVACH_TEST_PGBOUNCER_URL set), where it goes through that PgBouncer with
 * `pgbouncer=true`. Set-up, checks and clean-up keep talking to the server directly.
 */
export function adapterServerUrl(): string {
  const bouncer = provider === 'postgresql' ? process.env.KAVACH_TEST_PGBOUNCER_URL : undefined
  if (!bouncer) return serverUrl()
  return withParams(bouncer, { pgbouncer: 'true' })
}

/** `base` with `path` as its database and `params` added to its query. */
export function withParams(base: string, params: Record<string, string>, path?: string): string {
  const url = new URL(base)
  if (path !== undefined) url.pathname = `/${path}`
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  return url.toString()
}

const created: { provider: Provider; name: string }[] = []

/** The schema / database `freshAdapter` made last (it is dropped after the test). */
export function lastCreated() {
  return created[created.length - 1]
}

/** Drops the schemas / databases `freshAdapter` made (call after closing the adapters). */
export async function dropFreshDatabases() {
  const pending = created.splice(0)
  for (const { provider: which, name } of pending) {
    if (which === 'postgresql') {
      const { Client } = await import('pg')
      const client = new Client({ connectionString: serverUrl('postgresql') })
      await client.connect()
      await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      await client.end()
    } else if (which === 'mysql') {
      const mysql = await import('mysql2/promise')
      const conn = await mysql.createConnection(serverUrl('mysql'))
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await conn.end()
    }
  }
}

/**
 * The URL of a new, empty database of the provider under test: a fresh PostgreSQL schema or
 * MySQL database (dropped by `dropFreshDatabases`), or for SQLite `sqliteUrl` (default
 * `:memory:`). For other processes to open (a child, a worker) or for `createAdapter` itself.
 */
export async function freshUrl(params: Record<string, string> = {}, sqliteUrl = ':memory:'): Promise<string> {
  if (provider === 'sqlite') return sqliteUrl
  const name = `kt_${process.pid}_${Date.now().toString(36)}_${++counter}`
  created.push({ provider, name })
  if (provider === 'postgresql') return withParams(adapterServerUrl(), { ...params, schema: name })
  const mysql = await import('mysql2/promise')
  const conn = await mysql.createConnection(serverUrl())
  await conn.query(`CREATE DATABASE \`${name}\``)
  await conn.end()
  return withParams(serverUrl(), params, name)
}

/** A new adapter on a new, empty database of the provider under test. */
export async function freshAdapter(params: Record<string, string> = {}): Promise<KavachNativeAdapter> {
  return createAdapter(await freshUrl(params))
}

/**
 * The adapter of the running test: a fresh one on a fresh database for every test of the
 * file, closed (and its database dropped) after it. Call once at the top of a test file.
 */
export function adapterPerTest(): KavachNativeAdapter {
  let current: KavachNativeAdapter | undefined
  beforeEach(async () => {
    current = await freshAdapter()
  })
  afterEach(async () => {
    await current?.close()
    current = undefined
    await dropFreshDatabases()
  })
  return new Proxy({} as KavachNativeAdapter, {
    get: (_, key) => {
      if (!current) throw new Error('adapterPerTest(): no test is running')
      return (current as any)[key]
    },
  })
}

/**
 * One adapter on a fresh database for all tests of the enclosing describe block (or file),
 * for tests that cannot disturb one another: cheaper than adapterPerTest() on the servers.
 */
export function adapterPerSuite(): KavachNativeAdapter {
  let current: KavachNativeAdapter | undefined
  beforeAll(async () => {
    current = await freshAdapter()
  })
  afterAll(async () => {
    await current?.close()
    current = undefined
    await dropFreshDatabases()
  })
  return new Proxy({} as KavachNativeAdapter, {
    get: (_, key) => {
      if (!current) throw new Error('adapterPerSuite(): no suite is running')
      return (current as any)[key]
    },
  })
}

export const make = {
  user: (over: Record<string, unknown> = {}) => ({
    id: uid('user'),
    email: `${uid('mail')}@example.com`,
    name: 'Alice',
    createdAt: T0,
    updatedAt: T0,
    ...over,
  }),
  agent: (over: Record<string, unknown> = {}) => ({
    id: uid('agent'),
    ownerId: 'user-1',
    name: 'agent',
    type: 'autonomous',
    tokenHash: uid('hash'),
    tokenPrefix: 'kv_',
    createdAt: T0,
    updatedAt: T0,
    ...over,
  }),
  permission: (over: Record<string, unknown> = {}) => ({
    id: uid('perm'),
    agentId: 'agent-1',
    resource: 'mcp:github:*',
    actions: ['read', 'write'],
    createdAt: T0,
    ...over,
  }),
  delegationChain: (over: Record<string, unknown> = {}) => ({
    id: uid('chain'),
    fromAgentId: 'agent-1',
    toAgentId: 'agent-2',
    permissions: [{ resource: 'x', actions: ['read'] }],
    expiresAt: at(86_400_000),
    createdAt: T0,
    ...over,
  }),
  auditLog: (over: Record<string, unknown> = {}) => ({
    id: uid('log'),
    agentId: 'agent-1',
    userId: 'user-1',
    action: 'execute',
    resource: 'mcp:github:create_issue',
    result: 'allowed',
    durationMs: 42,
    timestamp: T0,
    ...over,
  }),
  session: (over: Record<string, unknown> = {}) => ({
    id: uid('session'),
    userId: 'user-1',
    expiresAt: new Date(Date.now() + 3_600_000),
    createdAt: T0,
    ...over,
  }),
  oauthClient: (over: Record<string, unknown> = {}) => ({
    id: uid('oc'),
    clientId: uid('client'),
    redirectUris: ['https://app.example/cb'],
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    createdAt: T0,
    updatedAt: T0,
    ...over,
  }),
  oauthAccessToken: (over: Record<string, unknown> = {}) => ({
    id: uid('at'),
    accessToken: uid('access'),
    refreshToken: uid('refresh'),
    clientId: 'client-1',
    userId: 'user-1',
    scopes: 'openid profile',
    accessTokenExpiresAt: at(3_600_000),
    createdAt: T0,
    ...over,
  }),
  oauthCode: (over: Record<string, unknown> = {}) => ({
    id: uid('code'),
    code: uid('c'),
    clientId: 'client-1',
    userId: 'user-1',
    redirectUri: 'https://app.example/cb',
    scopes: 'openid',
    expiresAt: at(600_000),
    createdAt: T0,
    ...over,
  }),
  mcpServer: (over: Record<string, unknown> = {}) => ({
    id: uid('mcp'),
    name: 'github',
    endpoint: `https://${uid('mcp')}.example/mcp`,
    tools: ['create_issue'],
    createdAt: T0,
    updatedAt: T0,
    ...over,
  }),
  apiKey: (over: Record<string, unknown> = {}) => ({
    id: uid('key'),
    userId: 'user-1',
    name: 'ci',
    keyHash: uid('keyhash'),
    keyPrefix: 'kk_',
    permissions: ['agents:read'],
    createdAt: T0,
    ...over,
  }),
  org: (over: Record<string, unknown> = {}) => ({
    id: uid('org'),
    name: 'Acme',
    slug: uid('acme'),
    ownerId: 'user-1',
    createdAt: T0,
    updatedAt: T0,
    ...over,
  }),
  orgMember: (over: Record<string, unknown> = {}) => ({
    id: uid('member'),
    orgId: 'org-1',
    userId: uid('user'),
    joinedAt: T0,
    ...over,
  }),
  orgInvitation: (over: Record<string, unknown> = {}) => ({
    id: uid('invite'),
    orgId: 'org-1',
    email: 'bob@example.com',
    invitedBy: 'user-1',
    expiresAt: at(86_400_000),
    createdAt: T0,
    ...over,
  }),
  jwtRefreshToken: (over: Record<string, unknown> = {}) => ({
    id: uid('jwt'),
    tokenHash: uid('jwthash'),
    userId: 'user-1',
    expiresAt: at(86_400_000),
    createdAt: T0,
    ...over,
  }),
  trustScore: (over: Record<string, unknown> = {}) => ({
    agentId: uid('agent'),
    score: 85,
    level: 'trusted',
    factors: { successRate: 0.99, age: 30 },
    computedAt: T0,
    ...over,
  }),
  approvalRequest: (over: Record<string, unknown> = {}) => ({
    id: uid('approval'),
    agentId: 'agent-1',
    userId: 'user-1',
    action: 'deploy',
    resource: 'prod',
    expiresAt: at(3_600_000),
    createdAt: T0,
    ...over,
  }),
}
