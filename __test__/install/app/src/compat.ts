// The reference package's types and ours, side by side: each reference type name is exported
// by kavach-native, each pair is assignable both ways, and so are the adapters.
import type * as Ref from '@kavachos/prisma'
import { createAdapter } from 'kavach-native'
import type * as Native from 'kavach-native'
import { runFlow as runFlowRef } from './kavach-ref.js'
import { runFlow as runFlowNative } from './kavach-native-swap.js'

type Expect<T extends true> = T
type Assignable<From, To> = [From] extends [To] ? true : false
type BothWays<A, B> = Assignable<A, B> extends true ? (Assignable<B, A> extends true ? true : false) : false

// The adapters, both ways (what `const db: KavachPrismaAdapter = createAdapter(url)` needs).
declare const refAdapter: Ref.KavachPrismaAdapter
declare const nativeAdapter: Native.KavachPrismaAdapter
export const refAsNative: Native.KavachPrismaAdapter = refAdapter
export const nativeAsRef: Ref.KavachPrismaAdapter = nativeAdapter
export const createdAsRef: Ref.KavachPrismaAdapter = createAdapter(':memory:')

// Code written for one runs on the other.
export const flows = [runFlowRef(createAdapter(':memory:'), 'a'), runFlowNative(refAdapter, 'b')]

// Row types: what the adapters return. Theirs -> ours and ours -> theirs.
export type Rows = [
  Expect<BothWays<Ref.PrismaUser, Native.PrismaUser>>,
  Expect<BothWays<Ref.PrismaAgent, Native.PrismaAgent>>,
  Expect<BothWays<Ref.PrismaPermission, Native.PrismaPermission>>,
  Expect<BothWays<Ref.PrismaDelegationChain, Native.PrismaDelegationChain>>,
  Expect<BothWays<Ref.PrismaAuditLog, Native.PrismaAuditLog>>,
  Expect<BothWays<Ref.PrismaSession, Native.PrismaSession>>,
  Expect<BothWays<Ref.PrismaRateLimit, Native.PrismaRateLimit>>,
  Expect<BothWays<Ref.PrismaOAuthClient, Native.PrismaOAuthClient>>,
  Expect<BothWays<Ref.PrismaOAuthAccessToken, Native.PrismaOAuthAccessToken>>,
  Expect<BothWays<Ref.PrismaOAuthAuthorizationCode, Native.PrismaOAuthAuthorizationCode>>,
  Expect<BothWays<Ref.PrismaMcpServer, Native.PrismaMcpServer>>,
  Expect<BothWays<Ref.PrismaApiKey, Native.PrismaApiKey>>,
  Expect<BothWays<Ref.PrismaOrganization, Native.PrismaOrganization>>,
  Expect<BothWays<Ref.PrismaOrgMember, Native.PrismaOrgMember>>,
  Expect<BothWays<Ref.PrismaOrgInvitation, Native.PrismaOrgInvitation>>,
  Expect<BothWays<Ref.PrismaJwtRefreshToken, Native.PrismaJwtRefreshToken>>,
  Expect<BothWays<Ref.PrismaTrustScore, Native.PrismaTrustScore>>,
  Expect<BothWays<Ref.PrismaApprovalRequest, Native.PrismaApprovalRequest>>,
]

// Inputs and filters: a value built for theirs is accepted by ours (ours may accept more,
// e.g. ISO strings for dates).
export type Inputs = [
  Expect<Assignable<Ref.CreateUserInput, Native.CreateUserInput>>,
  Expect<Assignable<Ref.CreateAgentInput, Native.CreateAgentInput>>,
  Expect<Assignable<Ref.CreatePermissionInput, Native.CreatePermissionInput>>,
  Expect<Assignable<Ref.CreateAuditLogInput, Native.CreateAuditLogInput>>,
  Expect<Assignable<Ref.CreateSessionInput, Native.CreateSessionInput>>,
  Expect<Assignable<Ref.AgentFilter, Native.AgentFilter>>,
  Expect<Assignable<Ref.AuditLogFilter, Native.AuditLogFilter>>,
]

// Each reference type name, imported from kavach-native (a missing one fails here).
export type Names = [
  Native.AgentFilter,
  Native.AuditLogFilter,
  Native.CreateAgentInput,
  Native.CreateAuditLogInput,
  Native.CreatePermissionInput,
  Native.CreateSessionInput,
  Native.CreateUserInput,
  Native.KavachPrismaAdapter,
  Native.PrismaAgent,
  Native.PrismaApiKey,
  Native.PrismaApprovalRequest,
  Native.PrismaAuditLog,
  Native.PrismaDelegationChain,
  Native.PrismaJwtRefreshToken,
  Native.PrismaMcpServer,
  Native.PrismaOAuthAccessToken,
  Native.PrismaOAuthAuthorizationCode,
  Native.PrismaOAuthClient,
  Native.PrismaOrgInvitation,
  Native.PrismaOrgMember,
  Native.PrismaOrganization,
  Native.PrismaPermission,
  Native.PrismaRateLimit,
  Native.PrismaSession,
  Native.PrismaTrustScore,
  Native.PrismaUser,
]
