//! The adapter's methods, each described once as data: its arguments and the shape of
//! the query it runs. `plan.rs` turns a description plus arguments into statements.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gte,
    Lte,
}

/// One positional argument of a method.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    /// A value of the named model field (required: `undefined` is rejected).
    Key(&'static str),
    /// A complete create input for the model.
    Record,
    /// A partial update of the model's fields.
    Patch,
    /// An optional object of optional filters.
    Filter(&'static [FilterKey]),
}

#[derive(Debug, Clone, Copy)]
pub struct FilterKey {
    pub key: &'static str,
    pub field: &'static str,
    pub cmp: Cmp,
}

const fn eq(field: &'static str) -> FilterKey {
    FilterKey {
        key: field,
        field,
        cmp: Cmp::Eq,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit_key: &'static str,
    pub default_limit: i64,
    pub offset_key: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Row,
    Nothing,
    Count,
}

/// What an update writes besides the `Patch` argument, if any.
#[derive(Debug, Clone, Copy)]
pub enum Set {
    /// The method's `Patch` argument.
    Patch,
    /// Every `Key` argument after the first (the first selects the row).
    Keys,
    /// A fixed boolean, e.g. `used = true`.
    Flag(&'static str, bool),
}

#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// One row or `null`, matched on every `Key` argument and the guards
    /// (findUnique / findFirst); with an order, the first in it.
    FindOne {
        guards: &'static [Guard],
        order: Option<(&'static str, Dir)>,
    },
    /// Rows matched on every `Key` argument, the filters and the guards.
    FindMany {
        guards: &'static [Guard],
        order: Option<(&'static str, Dir)>,
        page: Option<Page>,
    },
    Create,
    /// Update the row the first `Key` selects; P2025 when there is none.
    Update {
        set: Set,
        returns: Returns,
    },
    /// Delete the row the first `Key` selects; P2025 when there is none.
    Delete,
    /// Delete every match (none is fine); `expired` adds `field < now`.
    DeleteMany {
        expired: Option<&'static str>,
        returns: Returns,
    },
    /// One atomic `UPDATE ... WHERE key AND guards`, resolving with the updated row; when
    /// no row qualifies: `null`, or P2025 if `missing_is_error` (then only a missing key
    /// can fail). Concurrent callers cannot both succeed on a flag guard ("exactly once").
    Guarded {
        change: Change,
        guards: &'static [Guard],
        missing_is_error: bool,
    },
    /// One atomic `UPDATE ... SET change WHERE keys AND guards` over every match,
    /// resolving with the number of rows changed.
    UpdateMany {
        change: Change,
        guards: &'static [Guard],
    },
    /// Insert, or on conflict with `conflict` update `update` (Prisma's upsert).
    Upsert {
        conflict: &'static str,
        update: &'static [&'static str],
        derived_id: Option<DerivedId>,
    },
}

/// What a guarded update changes.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// Sets a boolean column.
    Flag(&'static str, bool),
    /// Adds one to an integer column, atomically.
    Increment(&'static str),
    /// Sets a text column (e.g. `status = 'expired'`).
    Text(&'static str, &'static str),
}

/// A condition a guarded update requires besides the key match.
#[derive(Debug, Clone, Copy)]
pub enum Guard {
    /// The boolean column holds this value (e.g. `used = false`).
    Is(&'static str, bool),
    /// The text column holds this value (e.g. `status = 'active'`).
    Equals(&'static str, &'static str),
    /// The date column lies in the future.
    NotExpired(&'static str),
    /// The date column lies in the past.
    Expired(&'static str),
    /// `field < limit`, or `limit` is null (no limit).
    BelowLimit(&'static str, &'static str),
}

/// An id the adapter computes instead of taking it from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedId {
    /// First 32 hex chars of sha256(`${agentId}:${resource}:${windowStart.getTime()}`).
    RateLimitWindow,
}

#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub name: &'static str,
    pub model: &'static str,
    pub args: &'static [Arg],
    pub shape: Shape,
}

use Arg::{Key, Patch, Record};

const fn find(name: &'static str, model: &'static str, args: &'static [Arg]) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::FindOne {
            guards: &[],
            order: None,
        },
    }
}

const fn list(
    name: &'static str,
    model: &'static str,
    args: &'static [Arg],
    order: Option<(&'static str, Dir)>,
) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::FindMany {
            guards: &[],
            order,
            page: None,
        },
    }
}

const fn create(name: &'static str, model: &'static str) -> Method {
    Method {
        name,
        model,
        args: &[Record],
        shape: Shape::Create,
    }
}

const fn update(name: &'static str, model: &'static str, args: &'static [Arg]) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::Update {
            set: Set::Patch,
            returns: Returns::Row,
        },
    }
}

const fn delete(name: &'static str, model: &'static str) -> Method {
    delete_by(name, model, &[Key("id")])
}

const fn delete_by(name: &'static str, model: &'static str, args: &'static [Arg]) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::Delete,
    }
}

const fn delete_many(name: &'static str, model: &'static str, args: &'static [Arg]) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::DeleteMany {
            expired: None,
            returns: Returns::Nothing,
        },
    }
}

const fn find_where(
    name: &'static str,
    model: &'static str,
    args: &'static [Arg],
    guards: &'static [Guard],
    order: Option<(&'static str, Dir)>,
) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::FindOne { guards, order },
    }
}

const fn list_where(
    name: &'static str,
    model: &'static str,
    args: &'static [Arg],
    guards: &'static [Guard],
    order: (&'static str, Dir),
    page: Option<Page>,
) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::FindMany {
            guards,
            order: Some(order),
            page,
        },
    }
}

/// `deleteExpiredX()`: deletes every row whose `field` lies in the past; resolves with the count.
const fn delete_expired(name: &'static str, model: &'static str, field: &'static str) -> Method {
    Method {
        name,
        model,
        args: &[],
        shape: Shape::DeleteMany {
            expired: Some(field),
            returns: Returns::Count,
        },
    }
}

/// Sets `flag` on the row the keys select, only if it is unset and (with `expires`) not
/// expired: exactly one of many concurrent callers gets the row, the others `null`.
const fn consume(
    name: &'static str,
    model: &'static str,
    args: &'static [Arg],
    guards: &'static [Guard],
    flag: &'static str,
) -> Method {
    Method {
        name,
        model,
        args,
        shape: Shape::Guarded {
            change: Change::Flag(flag, true),
            guards,
            missing_is_error: false,
        },
    }
}

/// Adds one to `field` of the row with this id, atomically; P2025 when there is none.
const fn increment(name: &'static str, model: &'static str, field: &'static str) -> Method {
    Method {
        name,
        model,
        args: &[Key("id")],
        shape: Shape::Guarded {
            change: Change::Increment(field),
            guards: &[],
            missing_is_error: true,
        },
    }
}

const PAGE: Page = Page {
    limit_key: "limit",
    default_limit: 100,
    offset_key: "offset",
};

const USER: &str = "KavachUser";
const AGENT: &str = "KavachAgent";
const PERMISSION: &str = "KavachPermission";
const DELEGATION: &str = "KavachDelegationChain";
const AUDIT: &str = "KavachAuditLog";
const SESSION: &str = "KavachSession";
const RATE_LIMIT: &str = "KavachRateLimit";
const OAUTH_CLIENT: &str = "KavachOAuthClient";
const OAUTH_TOKEN: &str = "KavachOAuthAccessToken";
const OAUTH_CODE: &str = "KavachOAuthAuthorizationCode";
const MCP: &str = "KavachMcpServer";
const API_KEY: &str = "KavachApiKey";
const ORG: &str = "KavachOrganization";
const ORG_MEMBER: &str = "KavachOrgMember";
const ORG_INVITE: &str = "KavachOrgInvitation";
const JWT_REFRESH: &str = "KavachJwtRefreshToken";
const TRUST: &str = "KavachTrustScore";
const APPROVAL: &str = "KavachApprovalRequest";
const TENANT: &str = "KavachTenant";
const BUDGET: &str = "KavachBudgetPolicy";
const CARD: &str = "KavachAgentCard";
const MAGIC_LINK: &str = "KavachMagicLink";
const EMAIL_OTP: &str = "KavachEmailOtp";
const TOTP: &str = "KavachTotp";
const ORG_ROLE: &str = "KavachOrgRole";
const PASSKEY: &str = "KavachPasskeyCredential";
const SSO: &str = "KavachSsoConnection";
const CHALLENGE: &str = "KavachPasskeyChallenge";
const USERNAME: &str = "KavachUsernameAccount";
const PHONE: &str = "KavachPhoneVerification";
const DEVICE: &str = "KavachTrustedDevice";
const ONE_TIME: &str = "KavachOneTimeToken";
const LOGIN: &str = "KavachLoginHistory";
const DID: &str = "KavachAgentDid";
const OIDC_CLIENT: &str = "KavachOidcClient";
const OIDC_CODE: &str = "KavachOidcAuthCode";
const OIDC_REFRESH: &str = "KavachOidcRefreshToken";
const COST: &str = "KavachCostEvent";
const EPHEMERAL: &str = "KavachEphemeralSession";

/// Every method of `KavachPrismaAdapter` except `transaction`, in its order, then the
/// methods for the KavachOS tables that adapter leaves out.
pub static METHODS: &[Method] = &[
    find("findUserById", USER, &[Key("id")]),
    find("findUserByEmail", USER, &[Key("email")]),
    create("createUser", USER),
    update("updateUser", USER, &[Key("id"), Patch]),
    delete("deleteUser", USER),
    find("findAgentById", AGENT, &[Key("id")]),
    find("findAgentByTokenHash", AGENT, &[Key("tokenHash")]),
    list(
        "listAgents",
        AGENT,
        &[Arg::Filter(&[
            eq("ownerId"),
            eq("tenantId"),
            eq("status"),
            eq("type"),
        ])],
        Some(("createdAt", Dir::Desc)),
    ),
    create("createAgent", AGENT),
    update("updateAgent", AGENT, &[Key("id"), Patch]),
    delete("deleteAgent", AGENT),
    list(
        "findPermissionsByAgentId",
        PERMISSION,
        &[Key("agentId")],
        None,
    ),
    create("createPermission", PERMISSION),
    delete_many("deletePermissionsByAgentId", PERMISSION, &[Key("agentId")]),
    delete("deletePermission", PERMISSION),
    find("findDelegationChain", DELEGATION, &[Key("id")]),
    list(
        "findDelegationChainsByAgent",
        DELEGATION,
        &[Key("fromAgentId")],
        Some(("createdAt", Dir::Desc)),
    ),
    create("createDelegationChain", DELEGATION),
    update("updateDelegationChain", DELEGATION, &[Key("id"), Patch]),
    create("createAuditLog", AUDIT),
    Method {
        name: "queryAuditLogs",
        model: AUDIT,
        args: &[Arg::Filter(&[
            eq("agentId"),
            eq("userId"),
            FilterKey {
                key: "since",
                field: "timestamp",
                cmp: Cmp::Gte,
            },
            FilterKey {
                key: "until",
                field: "timestamp",
                cmp: Cmp::Lte,
            },
            eq("result"),
        ])],
        shape: Shape::FindMany {
            guards: &[],
            order: Some(("timestamp", Dir::Desc)),
            page: Some(Page {
                limit_key: "limit",
                default_limit: 100,
                offset_key: "offset",
            }),
        },
    },
    find("findSessionById", SESSION, &[Key("id")]),
    create("createSession", SESSION),
    delete("deleteSession", SESSION),
    Method {
        name: "deleteExpiredSessions",
        model: SESSION,
        args: &[],
        shape: Shape::DeleteMany {
            expired: Some("expiresAt"),
            returns: Returns::Count,
        },
    },
    find(
        "findRateLimit",
        RATE_LIMIT,
        &[Key("agentId"), Key("resource"), Key("windowStart")],
    ),
    Method {
        name: "upsertRateLimit",
        model: RATE_LIMIT,
        args: &[
            Key("agentId"),
            Key("resource"),
            Key("windowStart"),
            Key("count"),
        ],
        shape: Shape::Upsert {
            conflict: "id",
            update: &["count"],
            derived_id: Some(DerivedId::RateLimitWindow),
        },
    },
    find("findOAuthClientById", OAUTH_CLIENT, &[Key("clientId")]),
    create("createOAuthClient", OAUTH_CLIENT),
    update("updateOAuthClient", OAUTH_CLIENT, &[Key("clientId"), Patch]),
    find("findOAuthAccessToken", OAUTH_TOKEN, &[Key("accessToken")]),
    find("findOAuthRefreshToken", OAUTH_TOKEN, &[Key("refreshToken")]),
    create("createOAuthAccessToken", OAUTH_TOKEN),
    delete_many("revokeOAuthAccessToken", OAUTH_TOKEN, &[Key("accessToken")]),
    find("findOAuthAuthorizationCode", OAUTH_CODE, &[Key("code")]),
    create("createOAuthAuthorizationCode", OAUTH_CODE),
    delete("deleteOAuthAuthorizationCode", OAUTH_CODE),
    find("findMcpServerByEndpoint", MCP, &[Key("endpoint")]),
    list("listMcpServers", MCP, &[], Some(("createdAt", Dir::Asc))),
    create("createMcpServer", MCP),
    find("findApiKeyByHash", API_KEY, &[Key("keyHash")]),
    list(
        "listApiKeysByUser",
        API_KEY,
        &[Key("userId")],
        Some(("createdAt", Dir::Desc)),
    ),
    create("createApiKey", API_KEY),
    Method {
        name: "updateApiKeyLastUsed",
        model: API_KEY,
        args: &[Key("id"), Key("lastUsedAt")],
        shape: Shape::Update {
            set: Set::Keys,
            returns: Returns::Nothing,
        },
    },
    delete("deleteApiKey", API_KEY),
    find("findOrgById", ORG, &[Key("id")]),
    find("findOrgBySlug", ORG, &[Key("slug")]),
    create("createOrg", ORG),
    delete("deleteOrg", ORG),
    find("findOrgMember", ORG_MEMBER, &[Key("orgId"), Key("userId")]),
    list(
        "listOrgMembers",
        ORG_MEMBER,
        &[Key("orgId")],
        Some(("joinedAt", Dir::Asc)),
    ),
    create("createOrgMember", ORG_MEMBER),
    delete_many(
        "deleteOrgMember",
        ORG_MEMBER,
        &[Key("orgId"), Key("userId")],
    ),
    find("findOrgInvitation", ORG_INVITE, &[Key("id")]),
    create("createOrgInvitation", ORG_INVITE),
    update("updateOrgInvitation", ORG_INVITE, &[Key("id"), Patch]),
    find("findJwtRefreshToken", JWT_REFRESH, &[Key("tokenHash")]),
    create("createJwtRefreshToken", JWT_REFRESH),
    Method {
        name: "markJwtRefreshTokenUsed",
        model: JWT_REFRESH,
        args: &[Key("id")],
        shape: Shape::Update {
            set: Set::Flag("used", true),
            returns: Returns::Nothing,
        },
    },
    find("findTrustScore", TRUST, &[Key("agentId")]),
    Method {
        name: "upsertTrustScore",
        model: TRUST,
        args: &[Record],
        shape: Shape::Upsert {
            conflict: "agentId",
            update: &["score", "level", "factors", "computedAt"],
            derived_id: None,
        },
    },
    find("findApprovalRequest", APPROVAL, &[Key("id")]),
    Method {
        name: "listPendingApprovals",
        model: APPROVAL,
        args: &[Key("agentId")],
        shape: Shape::FindMany {
            guards: &[Guard::Equals("status", "pending")],
            order: Some(("createdAt", Dir::Asc)),
            page: None,
        },
    },
    create("createApprovalRequest", APPROVAL),
    update("updateApprovalRequest", APPROVAL, &[Key("id"), Patch]),
    // ---- The KavachOS tables @kavachos/prisma leaves out (see the README's list). ----
    find("findTenantById", TENANT, &[Key("id")]),
    find("findTenantBySlug", TENANT, &[Key("slug")]),
    list("listTenants", TENANT, &[], Some(("createdAt", Dir::Asc))),
    create("createTenant", TENANT),
    update("updateTenant", TENANT, &[Key("id"), Patch]),
    delete("deleteTenant", TENANT),
    find("findBudgetPolicyById", BUDGET, &[Key("id")]),
    list(
        "listBudgetPolicies",
        BUDGET,
        &[Arg::Filter(&[
            eq("agentId"),
            eq("userId"),
            eq("tenantId"),
            eq("status"),
        ])],
        Some(("createdAt", Dir::Asc)),
    ),
    create("createBudgetPolicy", BUDGET),
    update("updateBudgetPolicy", BUDGET, &[Key("id"), Patch]),
    delete("deleteBudgetPolicy", BUDGET),
    find("findAgentCardById", CARD, &[Key("id")]),
    find("findAgentCardByAgentId", CARD, &[Key("agentId")]),
    list("listAgentCards", CARD, &[], Some(("createdAt", Dir::Asc))),
    create("createAgentCard", CARD),
    update("updateAgentCard", CARD, &[Key("id"), Patch]),
    delete("deleteAgentCard", CARD),
    find("findMagicLinkByToken", MAGIC_LINK, &[Key("token")]),
    create("createMagicLink", MAGIC_LINK),
    consume(
        "consumeMagicLink",
        MAGIC_LINK,
        &[Key("token")],
        &[Guard::Is("used", false), Guard::NotExpired("expiresAt")],
        "used",
    ),
    delete_many("deleteMagicLinksByEmail", MAGIC_LINK, &[Key("email")]),
    delete_expired("deleteExpiredMagicLinks", MAGIC_LINK, "expiresAt"),
    find_where(
        "findActiveEmailOtp",
        EMAIL_OTP,
        &[Key("email")],
        &[Guard::NotExpired("expiresAt")],
        Some(("createdAt", Dir::Desc)),
    ),
    create("createEmailOtp", EMAIL_OTP),
    increment("incrementEmailOtpAttempts", EMAIL_OTP, "attempts"),
    delete("deleteEmailOtp", EMAIL_OTP),
    delete_many("deleteEmailOtpsByEmail", EMAIL_OTP, &[Key("email")]),
    delete_expired("deleteExpiredEmailOtps", EMAIL_OTP, "expiresAt"),
    find("findTotpByUserId", TOTP, &[Key("userId")]),
    Method {
        name: "upsertTotp",
        model: TOTP,
        args: &[Record],
        shape: Shape::Upsert {
            conflict: "userId",
            update: &["secret", "enabled", "backupCodes", "updatedAt"],
            derived_id: None,
        },
    },
    update("updateTotp", TOTP, &[Key("userId"), Patch]),
    delete_by("deleteTotp", TOTP, &[Key("userId")]),
    find("findOrgRole", ORG_ROLE, &[Key("orgId"), Key("name")]),
    list(
        "listOrgRoles",
        ORG_ROLE,
        &[Key("orgId")],
        Some(("name", Dir::Asc)),
    ),
    create("createOrgRole", ORG_ROLE),
    update("updateOrgRole", ORG_ROLE, &[Key("id"), Patch]),
    delete("deleteOrgRole", ORG_ROLE),
    delete_many("deleteOrgRolesByOrg", ORG_ROLE, &[Key("orgId")]),
    find(
        "findPasskeyCredentialByCredentialId",
        PASSKEY,
        &[Key("credentialId")],
    ),
    list(
        "listPasskeyCredentialsByUser",
        PASSKEY,
        &[Key("userId")],
        Some(("createdAt", Dir::Asc)),
    ),
    create("createPasskeyCredential", PASSKEY),
    update("updatePasskeyCredential", PASSKEY, &[Key("id"), Patch]),
    delete("deletePasskeyCredential", PASSKEY),
    delete_many("deletePasskeyCredentialsByUser", PASSKEY, &[Key("userId")]),
    find("findSsoConnectionById", SSO, &[Key("id")]),
    find("findSsoConnectionByDomain", SSO, &[Key("domain")]),
    list(
        "listSsoConnectionsByOrg",
        SSO,
        &[Key("orgId")],
        Some(("createdAt", Dir::Asc)),
    ),
    create("createSsoConnection", SSO),
    update("updateSsoConnection", SSO, &[Key("id"), Patch]),
    delete("deleteSsoConnection", SSO),
    find("findPasskeyChallenge", CHALLENGE, &[Key("challenge")]),
    create("createPasskeyChallenge", CHALLENGE),
    // Deleting is consuming: of concurrent callers one succeeds, the rest get P2025.
    delete_by("deletePasskeyChallenge", CHALLENGE, &[Key("challenge")]),
    delete_expired("deleteExpiredPasskeyChallenges", CHALLENGE, "expiresAt"),
    find(
        "findUsernameAccountByUsername",
        USERNAME,
        &[Key("username")],
    ),
    find("findUsernameAccountByUserId", USERNAME, &[Key("userId")]),
    create("createUsernameAccount", USERNAME),
    update("updateUsernameAccount", USERNAME, &[Key("id"), Patch]),
    delete("deleteUsernameAccount", USERNAME),
    find_where(
        "findActivePhoneVerification",
        PHONE,
        &[Key("phoneNumber")],
        &[Guard::NotExpired("expiresAt")],
        Some(("createdAt", Dir::Desc)),
    ),
    create("createPhoneVerification", PHONE),
    increment("incrementPhoneVerificationAttempts", PHONE, "attempts"),
    delete("deletePhoneVerification", PHONE),
    delete_many(
        "deletePhoneVerificationsByPhone",
        PHONE,
        &[Key("phoneNumber")],
    ),
    delete_expired("deleteExpiredPhoneVerifications", PHONE, "expiresAt"),
    find_where(
        "findTrustedDevice",
        DEVICE,
        &[Key("userId"), Key("fingerprint")],
        &[Guard::NotExpired("expiresAt")],
        None,
    ),
    list(
        "listTrustedDevicesByUser",
        DEVICE,
        &[Key("userId")],
        Some(("trustedAt", Dir::Asc)),
    ),
    create("createTrustedDevice", DEVICE),
    update("updateTrustedDevice", DEVICE, &[Key("id"), Patch]),
    delete("deleteTrustedDevice", DEVICE),
    delete_many("deleteTrustedDevicesByUser", DEVICE, &[Key("userId")]),
    delete_expired("deleteExpiredTrustedDevices", DEVICE, "expiresAt"),
    find("findOneTimeTokenByHash", ONE_TIME, &[Key("tokenHash")]),
    create("createOneTimeToken", ONE_TIME),
    consume(
        "consumeOneTimeToken",
        ONE_TIME,
        &[Key("tokenHash"), Key("purpose")],
        &[Guard::Is("used", false), Guard::NotExpired("expiresAt")],
        "used",
    ),
    Method {
        name: "revokeOneTimeTokens",
        model: ONE_TIME,
        args: &[Key("identifier"), Key("purpose")],
        shape: Shape::UpdateMany {
            change: Change::Flag("used", true),
            guards: &[Guard::Is("used", false)],
        },
    },
    delete_expired("deleteExpiredOneTimeTokens", ONE_TIME, "expiresAt"),
    create("createLoginHistory", LOGIN),
    find_where(
        "findLastLogin",
        LOGIN,
        &[Key("userId")],
        &[],
        Some(("timestamp", Dir::Desc)),
    ),
    list_where(
        "listLoginHistoryByUser",
        LOGIN,
        &[Key("userId"), Arg::Filter(&[])],
        &[],
        ("timestamp", Dir::Desc),
        Some(PAGE),
    ),
    delete_many("deleteLoginHistoryByUser", LOGIN, &[Key("userId")]),
    find("findAgentDidByAgentId", DID, &[Key("agentId")]),
    find("findAgentDidByDid", DID, &[Key("did")]),
    create("createAgentDid", DID),
    delete_by("deleteAgentDid", DID, &[Key("agentId")]),
    find("findOidcClientByClientId", OIDC_CLIENT, &[Key("clientId")]),
    create("createOidcClient", OIDC_CLIENT),
    update("updateOidcClient", OIDC_CLIENT, &[Key("clientId"), Patch]),
    delete_by("deleteOidcClient", OIDC_CLIENT, &[Key("clientId")]),
    find("findOidcAuthCodeByHash", OIDC_CODE, &[Key("codeHash")]),
    create("createOidcAuthCode", OIDC_CODE),
    consume(
        "consumeOidcAuthCode",
        OIDC_CODE,
        &[Key("codeHash")],
        &[Guard::Is("used", false), Guard::NotExpired("expiresAt")],
        "used",
    ),
    delete_expired("deleteExpiredOidcAuthCodes", OIDC_CODE, "expiresAt"),
    find(
        "findOidcRefreshTokenByHash",
        OIDC_REFRESH,
        &[Key("tokenHash")],
    ),
    create("createOidcRefreshToken", OIDC_REFRESH),
    consume(
        "revokeOidcRefreshToken",
        OIDC_REFRESH,
        &[Key("id")],
        &[Guard::Is("revoked", false)],
        "revoked",
    ),
    Method {
        name: "revokeOidcRefreshTokensByUser",
        model: OIDC_REFRESH,
        args: &[Key("userId")],
        shape: Shape::UpdateMany {
            change: Change::Flag("revoked", true),
            guards: &[Guard::Is("revoked", false)],
        },
    },
    delete_expired("deleteExpiredOidcRefreshTokens", OIDC_REFRESH, "expiresAt"),
    create("createCostEvent", COST),
    list_where(
        "listCostEventsByAgent",
        COST,
        &[
            Key("agentId"),
            Arg::Filter(&[
                FilterKey {
                    key: "since",
                    field: "recordedAt",
                    cmp: Cmp::Gte,
                },
                FilterKey {
                    key: "until",
                    field: "recordedAt",
                    cmp: Cmp::Lte,
                },
            ]),
        ],
        &[],
        ("recordedAt", Dir::Asc),
        Some(PAGE),
    ),
    list(
        "listCostEventsByDelegationChain",
        COST,
        &[Key("delegationChainId")],
        Some(("recordedAt", Dir::Asc)),
    ),
    find("findEphemeralSessionById", EPHEMERAL, &[Key("id")]),
    find(
        "findEphemeralSessionByTokenHash",
        EPHEMERAL,
        &[Key("tokenHash")],
    ),
    list_where(
        "listActiveEphemeralSessionsByOwner",
        EPHEMERAL,
        &[Key("ownerId")],
        &[
            Guard::Equals("status", "active"),
            Guard::NotExpired("expiresAt"),
        ],
        ("createdAt", Dir::Asc),
        None,
    ),
    create("createEphemeralSession", EPHEMERAL),
    update("updateEphemeralSession", EPHEMERAL, &[Key("id"), Patch]),
    Method {
        name: "consumeEphemeralSessionAction",
        model: EPHEMERAL,
        args: &[Key("id")],
        shape: Shape::Guarded {
            change: Change::Increment("actionsUsed"),
            guards: &[
                Guard::Equals("status", "active"),
                Guard::NotExpired("expiresAt"),
                Guard::BelowLimit("actionsUsed", "maxActions"),
            ],
            missing_is_error: false,
        },
    },
    Method {
        name: "expireEphemeralSessions",
        model: EPHEMERAL,
        args: &[],
        shape: Shape::UpdateMany {
            change: Change::Text("status", "expired"),
            guards: &[
                Guard::Equals("status", "active"),
                Guard::Expired("expiresAt"),
            ],
        },
    },
];

impl Method {
    /// What the call resolves with: "row", "rowOrNull", "rows", "void" or "count".
    pub fn resolves_with(&self) -> &'static str {
        match self.shape {
            Shape::FindOne { .. } => "rowOrNull",
            Shape::FindMany { .. } => "rows",
            Shape::Create | Shape::Upsert { .. } => "row",
            Shape::Guarded {
                missing_is_error: true,
                ..
            } => "row",
            Shape::Guarded { .. } => "rowOrNull",
            Shape::Update {
                returns: Returns::Row,
                ..
            } => "row",
            Shape::DeleteMany {
                returns: Returns::Count,
                ..
            }
            | Shape::UpdateMany { .. } => "count",
            _ => "void",
        }
    }

    /// One line saying what the method does, derived from its description (it becomes
    /// the method's JSDoc and its line in the README).
    pub fn summary(&self) -> String {
        let keys: Vec<String> = self
            .args
            .iter()
            .filter_map(|a| match a {
                Key(f) => Some(format!("`{f}`")),
                _ => None,
            })
            .collect();
        let matching = match keys.len() {
            0 => String::new(),
            _ => format!(" matching {}", keys.join(" and ")),
        };
        let guards = |guards: &[Guard]| -> String {
            let parts: Vec<String> = guards
                .iter()
                .map(|g| match *g {
                    Guard::Is(f, b) => format!("`{f}` is {b}"),
                    Guard::Equals(f, v) => format!("`{f}` is '{v}'"),
                    Guard::NotExpired(f) => format!("`{f}` is in the future"),
                    Guard::Expired(f) => format!("`{f}` has passed"),
                    Guard::BelowLimit(f, l) => format!("`{f}` is below `{l}` (or `{l}` is null)"),
                })
                .collect();
            match parts.len() {
                0 => String::new(),
                _ => format!(" while {}", parts.join(" and ")),
            }
        };
        let order = |order: Option<(&str, Dir)>| match order {
            Some((f, Dir::Asc)) => format!(", oldest `{f}` first"),
            Some((f, Dir::Desc)) => format!(", newest `{f}` first"),
            None => String::new(),
        };
        let filters = self.args.iter().find_map(|a| match a {
            Arg::Filter(keys) if !keys.is_empty() => Some(format!(
                ", filtered by {}",
                keys.iter()
                    .map(|k| format!("`{}`", k.key))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        });
        let model = self.model;
        match self.shape {
            Shape::FindOne {
                guards: g,
                order: o,
            } => format!(
                "The {model}{matching}{}{}, or null.",
                guards(g),
                order(o).replace(", ", " (")
            )
            .replace(" first, or null", " first), or null"),
            Shape::FindMany {
                guards: g,
                order: o,
                page,
            } => format!(
                "Every {model}{matching}{}{}{}{}.",
                guards(g),
                filters.unwrap_or_default(),
                order(o),
                page.map_or(String::new(), |p| format!(
                    "; `{}` (default {}) and `{}` page it",
                    p.limit_key, p.default_limit, p.offset_key
                ))
            ),
            Shape::Create => {
                format!("Creates a {model}; defaults from the schema fill what is left out.")
            }
            Shape::Update {
                set: Set::Patch, ..
            } => {
                format!(
                    "Updates the given fields of the {model}{matching}; P2025 if there is none."
                )
            }
            Shape::Update { set: Set::Keys, .. } => {
                format!("Sets the given value on the {model} with this id; P2025 if there is none.")
            }
            Shape::Update {
                set: Set::Flag(f, b),
                ..
            } => {
                format!("Sets `{f}` to {b} on the {model}{matching}; P2025 if there is none.")
            }
            Shape::Delete => format!("Deletes the {model}{matching}; P2025 if there is none."),
            Shape::DeleteMany {
                expired: Some(f), ..
            } => {
                format!("Deletes every {model} whose `{f}` has passed; resolves with how many.")
            }
            Shape::DeleteMany { returns, .. } => format!(
                "Deletes every {model}{matching} (none is fine){}.",
                if returns == Returns::Count {
                    "; resolves with how many"
                } else {
                    ""
                }
            ),
            Shape::Guarded {
                change,
                guards: g,
                missing_is_error,
            } => {
                let what = match change {
                    Change::Flag(f, b) => format!("Sets `{f}` to {b}"),
                    Change::Increment(f) => format!("Adds one to `{f}`"),
                    Change::Text(f, v) => format!("Sets `{f}` to '{v}'"),
                };
                let otherwise = if missing_is_error {
                    "P2025 if there is none".to_string()
                } else {
                    "null if none qualifies; of concurrent callers only as many succeed as the condition allows".to_string()
                };
                format!("{what} on the {model}{matching}{}, atomically; resolves with the updated row, {otherwise}.", guards(g))
            }
            Shape::UpdateMany { change, guards: g } => {
                let what = match change {
                    Change::Flag(f, b) => format!("Sets `{f}` to {b}"),
                    Change::Increment(f) => format!("Adds one to `{f}`"),
                    Change::Text(f, v) => format!("Sets `{f}` to '{v}'"),
                };
                format!(
                    "{what} on every {model}{matching}{}; resolves with how many.",
                    guards(g)
                )
            }
            Shape::Upsert {
                conflict, update, ..
            } => format!(
                "Creates the {model}, or if one with this `{conflict}` exists updates its {}.",
                update
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The method as data, for generating its TypeScript signature.
    pub fn describe(&self) -> serde_json::Value {
        let page = match self.shape {
            Shape::FindMany { page: Some(p), .. } => {
                serde_json::json!({ "limitKey": p.limit_key, "offsetKey": p.offset_key, "defaultLimit": p.default_limit })
            }
            _ => serde_json::Value::Null,
        };
        let args: Vec<serde_json::Value> = self
            .args
            .iter()
            .map(|arg| match arg {
                Key(field) => serde_json::json!({ "kind": "key", "field": field }),
                Record => serde_json::json!({ "kind": "record" }),
                Patch => serde_json::json!({ "kind": "patch" }),
                Arg::Filter(keys) => serde_json::json!({
                    "kind": "filter",
                    "keys": keys.iter().map(|k| serde_json::json!({ "key": k.key, "field": k.field })).collect::<Vec<_>>(),
                    "page": page,
                }),
            })
            .collect();
        let shape = match self.shape {
            Shape::FindOne { .. } => "findOne",
            Shape::FindMany { .. } => "findMany",
            Shape::Create => "create",
            Shape::Update { .. } => "update",
            Shape::Delete => "delete",
            Shape::DeleteMany { .. } => "deleteMany",
            Shape::Guarded { .. } => "guarded",
            Shape::UpdateMany { .. } => "updateMany",
            Shape::Upsert { .. } => "upsert",
        };
        serde_json::json!({
            "name": self.name,
            "model": self.model,
            "args": args,
            "shape": shape,
            "summary": self.summary(),
            "resolvesWith": self.resolves_with(),
        })
    }
}

/// Does the method write? Writes go to the single writer connection.
pub fn writes(method: &Method) -> bool {
    !matches!(method.shape, Shape::FindOne { .. } | Shape::FindMany { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SCHEMA;

    #[test]
    fn every_method_names_real_models_and_fields() {
        assert_eq!(
            METHODS[..65].last().unwrap().name,
            "updateApprovalRequest",
            "the TS adapter's 65 come first"
        );
        let covered: std::collections::HashSet<&str> = METHODS.iter().map(|m| m.model).collect();
        assert_eq!(
            covered.len(),
            SCHEMA.models.len(),
            "every model has methods"
        );
        for m in METHODS {
            let model = SCHEMA.model(m.model);
            for arg in m.args {
                match arg {
                    Key(f) => {
                        model.field(f);
                    }
                    Arg::Filter(keys) => keys.iter().for_each(|k| {
                        model.field(k.field);
                    }),
                    _ => {}
                }
            }
            let check_guards = |guards: &[Guard]| {
                for guard in guards {
                    match *guard {
                        Guard::Is(f, _)
                        | Guard::Equals(f, _)
                        | Guard::NotExpired(f)
                        | Guard::Expired(f) => {
                            model.field(f);
                        }
                        Guard::BelowLimit(f, limit) => {
                            model.field(f);
                            model.field(limit);
                        }
                    }
                }
            };
            let check_change = |change: Change| match change {
                Change::Flag(f, _) | Change::Increment(f) | Change::Text(f, _) => {
                    model.field(f);
                }
            };
            match m.shape {
                Shape::FindMany { guards, .. } | Shape::FindOne { guards, .. } => {
                    check_guards(guards)
                }
                Shape::Guarded { change, guards, .. } | Shape::UpdateMany { change, guards } => {
                    check_guards(guards);
                    check_change(change);
                }
                Shape::DeleteMany {
                    expired: Some(f), ..
                }
                | Shape::Update {
                    set: Set::Flag(f, _),
                    ..
                } => {
                    model.field(f);
                }
                _ => {}
            }
            match m.shape {
                Shape::FindMany { order, .. } | Shape::FindOne { order, .. } => {
                    if let Some((f, _)) = order {
                        model.field(f);
                    }
                }
                Shape::Upsert {
                    conflict, update, ..
                } => {
                    model.field(conflict);
                    update.iter().for_each(|f| {
                        model.field(f);
                    });
                }
                _ => {}
            }
        }
        let mut names: Vec<_> = METHODS.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
    }
}
