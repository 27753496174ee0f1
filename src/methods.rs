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
    /// One row or `null`, matched on every `Key` argument (findUnique / findFirst).
    FindOne,
    /// Rows matched on every `Key` argument, the filters and fixed conditions.
    FindMany {
        fixed: &'static [(&'static str, &'static str)],
        order: Option<(&'static str, Dir)>,
        page: Option<Page>,
    },
    Create,
    /// Update the row the first `Key` selects; P2025 when there is none.
    Update { set: Set, returns: Returns },
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
        shape: Shape::FindOne,
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
            fixed: &[],
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
    Method {
        name,
        model,
        args: &[Key("id")],
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

/// Every method of `KavachPrismaAdapter` except `transaction`, in its order.
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
            fixed: &[],
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
            fixed: &[("status", "pending")],
            order: Some(("createdAt", Dir::Asc)),
            page: None,
        },
    },
    create("createApprovalRequest", APPROVAL),
    update("updateApprovalRequest", APPROVAL, &[Key("id"), Patch]),
];

impl Method {
    /// What the call resolves with: "row", "rowOrNull", "rows", "void" or "count".
    pub fn resolves_with(&self) -> &'static str {
        match self.shape {
            Shape::FindOne => "rowOrNull",
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
            } => "count",
            _ => "void",
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
        serde_json::json!({
            "name": self.name,
            "model": self.model,
            "args": args,
            "resolvesWith": self.resolves_with(),
        })
    }
}

/// Does the method write? Writes go to the single writer connection.
pub fn writes(method: &Method) -> bool {
    !matches!(method.shape, Shape::FindOne | Shape::FindMany { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SCHEMA;

    #[test]
    fn every_method_names_real_models_and_fields() {
        assert_eq!(METHODS.len(), 65, "66 with transaction");
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
            match m.shape {
                Shape::FindMany { fixed, order, .. } => {
                    fixed.iter().for_each(|(f, _)| {
                        model.field(f);
                    });
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
