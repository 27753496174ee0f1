// A seeded generator of adapter calls for the differential test. It keeps pools of the ids
// and key values it has handed out, so that calls hit existing rows, missing rows and
// duplicates in useful proportions. Records and patches are generated from the parsed
// schema.prisma, so every field of every model is exercised.
//
// The generator never looks at results: whatever the two adapters answer is compared.
import type { Field, Model, Schema } from './prisma-schema'

// ---------------------------------------------------------------------------------------
// PRNG (sfc32 seeded through splitmix32): fast, deterministic, good enough for fuzzing.

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  constructor(seed: number) {
    let s = seed >>> 0
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    for (let i = 0; i < 12; i++) this.next()
  }
  /** A float in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t / 4294967296
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]
  }
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    const total = entries.reduce((sum, [w]) => sum + w, 0)
    let r = this.next() * total
    for (const [w, value] of entries) {
      r -= w
      if (r < 0) return value
    }
    return entries[entries.length - 1][1]
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1))
      ;[items[i], items[j]] = [items[j], items[i]]
    }
    return items
  }
}

// ---------------------------------------------------------------------------------------
// Calls

export type Call =
  | { kind: 'call'; method: string; args: unknown[]; note?: string }
  | {
      kind: 'tx'
      /**
       * commit: fn runs the calls (errors are caught inside fn) and returns its own object.
       * throw: fn runs `throwAfter` calls, then throws its own Error: rollback.
       * propagate: the first failing call's error escapes fn: rollback.
       * nested: like commit, but the calls run inside tx.transaction(...).
       */
      mode: 'commit' | 'throw' | 'propagate' | 'nested'
      calls: Call[]
      throwAfter: number
    }

/**
 * Inputs on which the two adapters are known to differ; the generator leaves them out
 * unless asked to (PARITY_INCLUDE_KNOWN), so the rest can run.
 */
export const KNOWN_MISMATCHES = ['jsonroot', 'maxdouble', 'protokeys', 'limit', 'nul', 'txabort', 'tieorder', 'toolong', 'rootexp'] as const
export type KnownMismatch = (typeof KNOWN_MISMATCHES)[number]
export interface GeneratorOptions {
  include: ReadonlySet<KnownMismatch>
  /** The database both sides run on (default 'sqlite'); see serverSafe(). */
  provider?: 'sqlite' | 'postgresql' | 'mysql'
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678)
const DAY = 86_400_000
/** Instants shared by many rows so that orderings meet ties. */
const TIES = [T0, T0 + 1000, T0 + DAY]

const VOCAB: Record<string, readonly string[]> = {
  status: ['active', 'revoked', 'expired', 'pending', 'approved', 'denied', 'suspended'],
  type: ['autonomous', 'delegated', 'service', 'confidential', 'public'],
  result: ['allowed', 'denied', 'rate_limited', 'error'],
  level: ['untrusted', 'low', 'medium', 'high', 'trusted'],
  role: ['member', 'admin', 'owner'],
  action: ['read', 'write', 'execute', 'deploy'],
  resource: ['mcp:github:*', 'mcp:slack:post', 'file:/etc/passwd', 'db:users'],
  tenantId: ['tenant-1', 'tenant-2'],
}

/** Strings that tend to break encoders: quotes, escapes, non-ASCII, SQL wildcards, long. */
const NASTY = [
  '',
  ' ',
  'é',
  'Ünïcödé 日本語',
  '😀 emoji',
  'a"b\\c',
  "O'Reilly",
  'line\nbreak\ttab',
  'ls\u2028ps\u2029',
  '</script>',
  'nul\u0000byte',
  '\u0001\u001f',
  'null',
  'NULL',
  '100%_like',
  '0',
  'true',
  '  padded  ',
  'x'.repeat(500),
  'ÿ\u00ad\ufeff',
]

/** Which pool a field's values come from when it refers to another model's key. */
const REFS: Record<string, string> = {
  agentId: 'KavachAgent.id',
  fromAgentId: 'KavachAgent.id',
  toAgentId: 'KavachAgent.id',
  userId: 'KavachUser.id',
  invitedBy: 'KavachUser.id',
  respondedBy: 'KavachUser.id',
  orgId: 'KavachOrganization.id',
  'KavachAgent.ownerId': 'KavachUser.id',
  'KavachOrganization.ownerId': 'KavachUser.id',
  'KavachOAuthAccessToken.clientId': 'KavachOAuthClient.clientId',
  'KavachOAuthAuthorizationCode.clientId': 'KavachOAuthClient.clientId',
}

/** Non-unique fields that methods look rows up by: duplicates are wanted here (findFirst order). */
const LOOKUPS = new Set(['KavachAgent.tokenHash', 'KavachApiKey.keyHash'])

const CREATE_METHOD: Record<string, string> = {
  KavachUser: 'createUser',
  KavachAgent: 'createAgent',
  KavachPermission: 'createPermission',
  KavachDelegationChain: 'createDelegationChain',
  KavachAuditLog: 'createAuditLog',
  KavachSession: 'createSession',
  KavachOAuthClient: 'createOAuthClient',
  KavachOAuthAccessToken: 'createOAuthAccessToken',
  KavachOAuthAuthorizationCode: 'createOAuthAuthorizationCode',
  KavachMcpServer: 'createMcpServer',
  KavachApiKey: 'createApiKey',
  KavachOrganization: 'createOrg',
  KavachOrgMember: 'createOrgMember',
  KavachOrgInvitation: 'createOrgInvitation',
  KavachJwtRefreshToken: 'createJwtRefreshToken',
  KavachApprovalRequest: 'createApprovalRequest',
}

class Pool {
  readonly values: string[] = []
  private n = 0
  constructor(private readonly prefix: string) {}
  fresh(rng: Rng): string {
    let value = `${this.prefix}${this.n++}`
    if (rng.chance(0.02)) value += rng.pick(['-é', ' sp', '-😀', "-'q"])
    this.values.push(value)
    return value
  }
  any(rng: Rng): string | undefined {
    return this.values.length ? rng.pick(this.values) : undefined
  }
}

export class CallGenerator {
  readonly rng: Rng
  private readonly models: Map<string, Model>
  private readonly pools = new Map<string, Pool>()
  private readonly rateLimits: { agentId: string; resource: string; windowStart: number }[] = []
  private readonly members: { orgId: string; userId: string }[] = []
  private readonly auditTimes: number[] = []
  private readonly now = Date.now()
  private readonly methods: [number, string, () => unknown[]][]

  constructor(
    seed: number,
    schema: Schema,
    private readonly options: GeneratorOptions = { include: new Set() },
  ) {
    this.rng = new Rng(seed)
    this.models = new Map(schema.models.map((m) => [m.name, m]))
    this.methods = this.methodTable()
  }

  // ---- pools and scalar values --------------------------------------------------------

  private pool(key: string): Pool {
    let pool = this.pools.get(key)
    if (!pool) {
      const [model, field] = key.split('.')
      const short = model.replace(/^Kavach/, '').replace(/[a-z]/g, '').toLowerCase() || model
      pool = new Pool(field === 'id' ? `${short}-` : `${short}-${field}-`)
      this.pools.set(key, pool)
    }
    return pool
  }

  /** A value of an existing row's key most of the time, otherwise one no row has. */
  private existing(key: string, pExisting = 0.8): string {
    const value = this.rng.chance(pExisting) ? this.pool(key).any(this.rng) : undefined
    return value ?? `missing-${this.rng.int(0, 5)}`
  }

  private text(): string {
    const rng = this.rng
    if (rng.chance(0.15)) return this.serverSafe(rng.pick(NASTY))
    const words = rng.int(1, 3)
    const out: string[] = []
    for (let i = 0; i < words; i++) {
      let w = ''
      for (let j = rng.int(2, 8); j > 0; j--) w += String.fromCharCode(97 + rng.int(0, 25))
      out.push(w)
    }
    return out.join(' ')
  }

  /**
   * A NASTY string as it may be sent to the provider under test. SQLite takes them all; on the
   * servers a few are rejected by the database itself, and both adapters then fail, but not
   * with the same error (see the MISMATCH notes), so they are replaced unless asked for.
   */
  private serverSafe(value: string): string {
    const provider = this.options.provider ?? 'sqlite'
    if (provider === 'postgresql' && value.includes('\u0000') && !this.options.include.has('nul')) {
      // MISMATCH: PostgreSQL rejects U+0000 in TEXT (22021) and in jsonb (22P05); both adapters
      // report P2039 ("Database error. Code: `22021`..."). But when another value of the same call
      // is out of range too, Prisma (parameters sent as text) hears of that one first (P2020) and
      // the native adapter (binary parameters) of the NUL byte.
      return value.replace(/\u0000/g, '<nul>')
    }
    if (provider === 'mysql' && value.length > 191 && !this.options.include.has('toolong')) {
      // MISMATCH: a string longer than a VARCHAR(191) column: Prisma 7 rejects with P2000
      // (meta.column_name); the native adapter with PrismaClientUnknownRequestError
      // "Data too long for column ..." and no code. (Cut in Json strings too, which could be longer.)
      return value.slice(0, 191)
    }
    return value
  }

  private date(field?: string): Date {
    const rng = this.rng
    if (field && /^(createdAt|timestamp|joinedAt)$/.test(field) && rng.chance(0.08)) return new Date(rng.pick(TIES))
    const ms = rng.weighted<number>([
      [8, T0 + rng.int(-3 * 365, 3 * 365) * DAY + rng.int(0, DAY - 1)],
      [1, T0 + rng.int(-3 * 365, 3 * 365) * DAY], // a whole second
      [1, Date.UTC(rng.int(1900, 2200), rng.int(0, 11), rng.int(1, 28), rng.int(0, 23), rng.int(0, 59), rng.int(0, 59), rng.int(0, 999))],
    ])
    return new Date(ms)
  }

  private sessionExpiry(): Date {
    // Far enough from "now" that deleteExpiredSessions on either side sees the same side of it.
    const offset = this.rng.int(3_600_000, 400 * DAY)
    return new Date(this.now + (this.rng.chance(0.5) ? offset : -offset))
  }

  private int(): number {
    const rng = this.rng
    return rng.weighted<number>([
      [10, rng.int(0, 100)],
      [3, rng.int(-1000, -1)],
      [2, rng.int(0, 2 ** 31)],
      [1, rng.pick([2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32])],
      [1, rng.int(-(2 ** 53) + 1, 2 ** 53 - 1)],
      [1, rng.pick([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER])],
      [1, rng.pick([1.5, -1.5, 2.5, 0.9999, 1e-7, -0, 2.0, 123.456])], // Prisma truncates toward zero
    ])
  }

  private number(depth = 1): number {
    const rng = this.rng
    const plain: [number, number][] = [
      [10, rng.int(-1000, 1000)],
      [4, Math.round(rng.next() * 1e6) / 100],
      [1, rng.pick([0.5, 0.1, 0.2, -0, 1e21, 1e-7, 1.5e-7, 5e-324, 2 ** 53, 1e300, -1e300])],
    ]
    if (this.options.include.has('jsonroot')) {
      // MISMATCH: a Json value that is a bare number lands in a column declared JSONB, which has
      // NUMERIC affinity: SQLite stores it as a REAL, and the two SQLite builds convert the text
      // differently ('0.30000000000000004' -> 0.30000000000000004 in the native adapter's SQLite
      // 3.46, 0.3 in better-sqlite3's 3.53.2). (Reading such REALs back exactly is fixed.)
      plain.push([1, rng.pick([0.30000000000000004, 0.7999999999999999, 1 / 3])])
    }
    if (this.options.include.has('maxdouble')) {
      // MISMATCH: a bare Json value close to the largest double (Number.MAX_VALUE): the native
      // adapter stores and reads it back exactly; Prisma 7's SQLite stores the text 'null'.
      plain.push([1, rng.pick([Number.MAX_VALUE, -Number.MAX_VALUE, 1.7e308])])
    }
    // Numbers that need 16-17 significant digits (they once came back one ulp off; fixed by
    // exact float parsing). At the root of a Json value they fall under 'jsonroot' instead.
    if (depth > 0 || this.options.include.has('jsonroot')) {
      plain.push([3, (rng.next() - 0.5) * 10 ** rng.int(-20, 25)])
      plain.push([1, rng.pick([123456789012345680000, 12345678901234567000, 0.1 + 0.7, 1 / 3, Math.PI * 1e17])])
    }
    const value = rng.weighted(plain)
    if ((this.options.provider ?? 'sqlite') === 'mysql' && depth === 0 && Math.abs(value) >= 1e20 && !this.options.include.has('rootexp')) {
      // MISMATCH: a Json value that is a bare number: MySQL/MariaDB keep the JSON text as sent, and
      // Prisma 7 does not write JSON.stringify's text for some: 1e20 -> '1e20' (native:
      // '100000000000000000000'), 1e21 -> '1e21' ('1e+21'), -1e300 -> '-1e300' ('-1e+300'),
      // 1e-6 -> '1e-6' ('0.000001'). Both read back the same number. Inside an object or array
      // both write JSON.stringify's text. (Of the generator's bare numbers only those >= 1e20 hit it.)
      return Math.sign(value) * 12345.5
    }
    return value
  }

  private json(depth = 0, root?: 'object' | 'array'): unknown {
    const rng = this.rng
    const kind =
      root ??
      rng.weighted<string>(
        depth > 2
          ? [
              [3, 'scalar'],
              [1, 'string'],
            ]
          : [
              [3, 'scalar'],
              [3, 'string'],
              [2, 'object'],
              [2, 'array'],
            ],
      )
    if (kind === 'string') return this.text()
    if (kind === 'scalar') return rng.weighted<unknown>([
      [5, this.number(depth)],
      [2, rng.chance(0.5)],
      [1, null],
      [1, new Date(T0 + rng.int(0, DAY))], // JSON.stringify writes its ISO string
    ])
    if (kind === 'array') return Array.from({ length: rng.int(0, 4) }, () => this.json(depth + 1))
    const out: Record<string, unknown> = {}
    for (let i = rng.int(0, 5); i > 0; i--) {
      const keys: [number, string][] = [
        [10, this.text().slice(0, 12)],
        [1, rng.pick(['1', '0', '10', '-1', '1.5', 'length', 'valueOf', ''])],
      ]
      if (this.options.include.has('protokeys')) {
        // MISMATCH (both sides deviate from JSON.stringify; see the report):
        // - an own '__proto__' key: Prisma drops it when writing (or throws a TypeError when its
        //   value is null); the native adapter stores it and reads it back as an own property,
        //   as JSON.parse does.
        // - a 'constructor' / 'toString' key in an object that also holds a Date: Prisma stores
        //   the Date as {"$type":"DateTime","value":...}, the native adapter as its ISO string.
        keys.push([1, rng.pick(['constructor', 'toString', '__proto__'])])
      }
      const key = rng.weighted(keys)
      if (key === '__proto__') Object.defineProperty(out, key, { value: this.json(depth + 1), enumerable: true, writable: true, configurable: true })
      else out[key] = rng.chance(0.05) ? undefined : this.json(depth + 1) // undefined members are dropped
    }
    return out
  }

  /** A value for `field` of `model` in a create input or a patch. */
  private value(model: Model, field: Field, forCreate: boolean): unknown {
    const rng = this.rng
    const key = `${model.name}.${field.name}`
    const unique = field.attributes.some((a) => a.name === '@id' || a.name === '@unique')
    if (field.optional && rng.chance(forCreate ? 0.25 : 0.3)) return null
    if (model.name === 'KavachTrustScore' && field.name === 'agentId') {
      // upsert: update an existing score half of the time.
      const pool = this.pool(key)
      const old = rng.chance(0.5) ? pool.any(rng) : undefined
      if (old) return old
      const agent = this.existing('KavachAgent.id', 0.7)
      pool.values.push(agent)
      return agent
    }
    if (unique || LOOKUPS.has(key)) {
      const pDuplicate = LOOKUPS.has(key) ? 0.2 : forCreate ? 0.06 : 0.04
      return (rng.chance(pDuplicate) && this.pool(key).any(rng)) || this.pool(key).fresh(rng)
    }
    const ref = REFS[key] ?? REFS[field.name]
    if (ref) return this.existing(ref, 0.85)
    const vocab = VOCAB[field.name]
    if (vocab && field.type === 'String' && rng.chance(0.9)) return rng.pick(vocab)
    if (model.name === 'KavachSession' && field.name === 'expiresAt') return this.sessionExpiry()
    switch (field.type) {
      case 'String':
        return this.text()
      case 'Int':
        return this.int()
      case 'Boolean':
        return rng.chance(0.5)
      case 'DateTime':
        return this.date(field.name)
      case 'Json': {
        if (rng.chance(0.04)) return null // stored as the JSON text 'null', even on a required field
        const listy = /s$|Uris|Types|actions|tools|permissions|codes/i.test(field.name)
        return this.json(0, rng.chance(0.85) ? (listy ? 'array' : 'object') : undefined)
      }
      default:
        throw new Error(`no value generator for ${field.type}`)
    }
  }

  private hasDefault(field: Field) {
    return field.attributes.some((a) => a.name === '@default')
  }

  /** A complete create input for `modelName`, now and then broken in one way. */
  record(modelName: string): Record<string, unknown> {
    const model = this.models.get(modelName)!
    const rng = this.rng
    const out: Record<string, unknown> = {}
    for (const field of model.fields) {
      if ((field.optional || this.hasDefault(field)) && rng.chance(0.35)) {
        if (rng.chance(0.1)) out[field.name] = undefined // same as absent
        continue
      }
      out[field.name] = this.value(model, field, true)
    }
    if (modelName === 'KavachAuditLog') this.auditTimes.push((out.timestamp as Date).getTime())
    if (modelName === 'KavachOrgMember' && typeof out.orgId === 'string' && typeof out.userId === 'string') {
      this.members.push({ orgId: out.orgId, userId: out.userId })
    }
    if (rng.chance(0.04)) this.breakInput(model, out, true)
    return out
  }

  /** A partial update: a few fields, sometimes none, sometimes a key change. */
  patch(modelName: string): Record<string, unknown> {
    const model = this.models.get(modelName)!
    const rng = this.rng
    const out: Record<string, unknown> = {}
    const count = rng.weighted<number>([
      [1, 0],
      [5, 1],
      [4, 2],
      [2, 4],
      [1, model.fields.length],
    ])
    const fields = rng.shuffle([...model.fields]).slice(0, count)
    for (const field of fields) {
      if (field.attributes.some((a) => a.name === '@id') && !rng.chance(0.15)) continue
      out[field.name] = rng.chance(0.08) ? undefined : this.value(model, field, false)
    }
    if (rng.chance(0.04)) this.breakInput(model, out, false)
    return out
  }

  /** Makes the input invalid: Prisma answers with a validation error (no code) and writes nothing. */
  private breakInput(model: Model, input: Record<string, unknown>, forCreate: boolean) {
    const rng = this.rng
    const required = model.fields.filter((f) => !f.optional && !this.hasDefault(f))
    const way = rng.pick(forCreate ? ['missing', 'unknown', 'type', 'null', 'date'] : ['unknown', 'type', 'null', 'date'])
    switch (way) {
      case 'missing':
        delete input[rng.pick(required).name]
        break
      case 'unknown':
        input[rng.pick(['bogus', 'ID', 'created_at', 'owner'])] = 1
        break
      case 'type':
      {
        const target = rng.pick(model.fields.filter((f) => f.type !== 'Json'))
        const wrong: Record<string, unknown[]> = {
          String: [42, true, ['a']],
          Int: ['5', true, 5n],
          Boolean: [1, 'true'],
          DateTime: [1735787045678, '2025-01-02', 'not a date'],
        }
        input[target.name] = rng.pick(wrong[target.type])
        break
      }
      case 'null': {
        const target = rng.pick(required.filter((f) => f.type !== 'Json'))
        input[target.name] = null
        break
      }
      case 'date': {
        const dateField = model.fields.find((f) => f.type === 'DateTime')!
        input[dateField.name] = rng.pick([new Date(Number.NaN), '2025-01-02T03:04:05.678Z', '2025-01-02T03:04:05+02:00']) // ISO strings are accepted by Prisma
        break
      }
    }
  }

  // ---- methods -------------------------------------------------------------------------

  private methodTable(): [number, string, () => unknown[]][] {
    const rng = this.rng
    const ex = (key: string, p = 0.8) => () => [this.existing(key, p)]
    const table: [number, string, () => unknown[]][] = []
    for (const [model, method] of Object.entries(CREATE_METHOD)) table.push([model === 'KavachAuditLog' ? 6 : 3, method, () => [this.record(model)]])
    const upd = (model: string, key = 'id') => () => [this.existing(`${model}.${key}`, 0.85), this.patch(model)]
    table.push(
      [1, 'findUserById', ex('KavachUser.id')],
      [1, 'findUserByEmail', ex('KavachUser.email')],
      [2, 'updateUser', upd('KavachUser')],
      [1, 'deleteUser', ex('KavachUser.id', 0.7)],
      [1, 'findAgentById', ex('KavachAgent.id')],
      [2, 'findAgentByTokenHash', ex('KavachAgent.tokenHash')],
      [3, 'listAgents', () => this.agentFilter()],
      [2, 'updateAgent', upd('KavachAgent')],
      [1, 'deleteAgent', ex('KavachAgent.id', 0.7)],
      [1, 'findPermissionsByAgentId', ex('KavachAgent.id')],
      [1, 'deletePermissionsByAgentId', ex('KavachAgent.id', 0.6)],
      [1, 'deletePermission', ex('KavachPermission.id', 0.7)],
      [1, 'findDelegationChain', ex('KavachDelegationChain.id')],
      [1, 'findDelegationChainsByAgent', ex('KavachAgent.id')],
      [2, 'updateDelegationChain', upd('KavachDelegationChain')],
      [5, 'queryAuditLogs', () => [this.auditFilter()]],
      [1, 'findSessionById', ex('KavachSession.id')],
      [1, 'deleteSession', ex('KavachSession.id', 0.7)],
      [1, 'deleteExpiredSessions', () => []],
      [2, 'findRateLimit', () => this.rateLimitKey()],
      [3, 'upsertRateLimit', () => [...this.rateLimitKey(true), this.int()]],
      [1, 'findOAuthClientById', ex('KavachOAuthClient.clientId')],
      [2, 'updateOAuthClient', upd('KavachOAuthClient', 'clientId')],
      [1, 'findOAuthAccessToken', ex('KavachOAuthAccessToken.accessToken')],
      [1, 'findOAuthRefreshToken', ex('KavachOAuthAccessToken.refreshToken')],
      [1, 'revokeOAuthAccessToken', ex('KavachOAuthAccessToken.accessToken', 0.7)],
      [1, 'findOAuthAuthorizationCode', ex('KavachOAuthAuthorizationCode.code')],
      [1, 'deleteOAuthAuthorizationCode', ex('KavachOAuthAuthorizationCode.id', 0.7)],
      [1, 'findMcpServerByEndpoint', ex('KavachMcpServer.endpoint')],
      [1, 'listMcpServers', () => []],
      [1, 'findApiKeyByHash', ex('KavachApiKey.keyHash')],
      [1, 'listApiKeysByUser', ex('KavachUser.id')],
      [2, 'updateApiKeyLastUsed', () => [this.existing('KavachApiKey.id', 0.8), this.date()]],
      [1, 'deleteApiKey', ex('KavachApiKey.id', 0.7)],
      [1, 'findOrgById', ex('KavachOrganization.id')],
      [1, 'findOrgBySlug', ex('KavachOrganization.slug')],
      [1, 'deleteOrg', ex('KavachOrganization.id', 0.7)],
      [2, 'findOrgMember', () => this.memberKey()],
      [1, 'listOrgMembers', ex('KavachOrganization.id')],
      [1, 'deleteOrgMember', () => this.memberKey()],
      [1, 'findOrgInvitation', ex('KavachOrgInvitation.id')],
      [2, 'updateOrgInvitation', upd('KavachOrgInvitation')],
      [1, 'findJwtRefreshToken', ex('KavachJwtRefreshToken.tokenHash')],
      [1, 'markJwtRefreshTokenUsed', ex('KavachJwtRefreshToken.id', 0.8)],
      [1, 'findTrustScore', ex('KavachTrustScore.agentId')],
      [3, 'upsertTrustScore', () => [this.trustScoreInput()]],
      [1, 'findApprovalRequest', ex('KavachApprovalRequest.id')],
      [2, 'listPendingApprovals', ex('KavachAgent.id')],
      [2, 'updateApprovalRequest', upd('KavachApprovalRequest')],
    )
    void rng
    return table
  }

  private trustScoreInput() {
    // upsertTrustScore takes a full KavachTrustScore; broken now and then like any create.
    return this.record('KavachTrustScore')
  }

  private agentFilter(): unknown[] {
    const rng = this.rng
    if (rng.chance(0.15)) return []
    const filter: Record<string, unknown> = {}
    if (rng.chance(0.5)) filter.ownerId = this.existing('KavachUser.id', 0.85)
    if (rng.chance(0.3)) filter.tenantId = rng.pick(VOCAB.tenantId)
    if (rng.chance(0.3)) filter.status = rng.pick(VOCAB.status)
    if (rng.chance(0.3)) filter.type = rng.pick(VOCAB.type)
    if (rng.chance(0.05)) filter[rng.pick(['ownerId', 'tenantId', 'status', 'type'])] = undefined // ignored
    return [filter]
  }

  private auditFilter(): Record<string, unknown> {
    const rng = this.rng
    const filter: Record<string, unknown> = {}
    const instant = () => {
      // Often exactly a stored timestamp, to test that since/until are inclusive.
      const t = rng.chance(0.6) && this.auditTimes.length ? rng.pick(this.auditTimes) : this.date('timestamp').getTime()
      return new Date(t + rng.pick([0, 0, 0, -1, 1]))
    }
    if (rng.chance(0.4)) filter.agentId = this.existing('KavachAgent.id', 0.85)
    if (rng.chance(0.25)) filter.userId = this.existing('KavachUser.id', 0.85)
    if (rng.chance(0.25)) filter.result = rng.pick(VOCAB.result)
    if (rng.chance(0.4)) filter.since = instant()
    if (rng.chance(0.4)) filter.until = instant()
    if (rng.chance(0.4)) filter.limit = rng.pick([0, 1, 2, 3, 5, 10, 50, 100, 1000])
    if (rng.chance(0.3)) filter.offset = rng.pick([0, 1, 2, 5, 20, 1000])
    if (this.options.include.has('limit') && rng.chance(0.05)) {
      // MISMATCH: Prisma accepts a negative take (the last rows, counted from the end); the
      // native adapter rejects it with a validation error.
      filter.limit = rng.pick([-1, -3])
    }
    if (rng.chance(0.03)) {
      filter.limit = rng.pick([1.5, 2.9]) // truncated by both
    }
    if (rng.chance(0.05)) filter[rng.pick(['agentId', 'userId', 'since', 'until', 'limit', 'offset', 'result'])] = undefined // ignored
    return filter
  }

  private rateLimitKey(forUpsert = false): [string, string, Date] {
    const rng = this.rng
    if (this.rateLimits.length && rng.chance(forUpsert ? 0.5 : 0.7)) {
      const known = rng.pick(this.rateLimits)
      return [known.agentId, known.resource, new Date(known.windowStart + (rng.chance(0.1) ? rng.pick([-1, 1, 1000]) : 0))]
    }
    const key = {
      agentId: this.existing('KavachAgent.id', 0.8),
      resource: rng.pick(VOCAB.resource),
      windowStart: Math.floor(this.date().getTime() / 60_000) * 60_000 + (rng.chance(0.2) ? rng.int(1, 59_999) : 0),
    }
    if (forUpsert) this.rateLimits.push(key)
    return [key.agentId, key.resource, new Date(key.windowStart)]
  }

  private memberKey(): [string, string] {
    const rng = this.rng
    if (this.members.length && rng.chance(0.7)) {
      const m = rng.pick(this.members)
      return [m.orgId, m.userId]
    }
    return [this.existing('KavachOrganization.id', 0.8), this.existing('KavachUser.id', 0.8)]
  }

  /** One top-level step: a call, or now and then a transaction of a few calls. */
  next(): Call {
    const rng = this.rng
    if (rng.chance(0.04)) {
      const mode = rng.weighted<'commit' | 'throw' | 'propagate' | 'nested'>([
        [4, 'commit'],
        [3, 'throw'],
        [2, 'propagate'],
        [1, 'nested'],
      ])
      const calls = Array.from({ length: rng.int(1, 5) }, () => this.plainCall())
      return { kind: 'tx', mode, calls, throwAfter: rng.int(0, calls.length) }
    }
    return this.plainCall()
  }

  private plainCall(): Call {
    const [, method, args] = this.rng.weighted(this.methods.map((entry) => [entry[0], entry] as const))
    return { kind: 'call', method, args: args() }
  }

  /** A plain call (never a transaction) to one of the methods `accept` lets through. */
  callMatching(accept: (method: string) => boolean): Extract<Call, { kind: 'call' }> {
    const entries = this.methods.filter(([, name]) => accept(name))
    if (!entries.length) throw new Error('callMatching: no method accepted')
    const [, method, args] = this.rng.weighted(entries.map((entry) => [entry[0], entry] as const))
    return { kind: 'call', method, args: args() }
  }

  /** All method names the generator can produce. */
  methodNames(): string[] {
    return this.methods.map(([, name]) => name)
  }
}
