//! The model declaration: `schema.prisma` (shipped in the package) parsed once into
//! [`Model`]s. DDL, decoding, validation and the TypeScript types all derive from it.

use std::sync::LazyLock;

pub const SCHEMA_PRISMA: &str = include_str!("../schema.prisma");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Int,
    Boolean,
    DateTime,
    Json,
}

impl ScalarType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "String" => Self::String,
            "Int" => Self::Int,
            "Boolean" => Self::Boolean,
            "DateTime" => Self::DateTime,
            "Json" => Self::Json,
            _ => return None,
        })
    }

    pub fn prisma_name(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::Int => "Int",
            Self::Boolean => "Boolean",
            Self::DateTime => "DateTime",
            Self::Json => "Json",
        }
    }
}

/// A `@default(...)` literal.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    String(String),
    Int(i64),
    Boolean(bool),
}

#[derive(Debug, Clone)]
pub struct Field {
    /// camelCase name as seen from JS and Prisma.
    pub name: String,
    /// Column name in the database (`@map`).
    pub column: String,
    pub ty: ScalarType,
    pub optional: bool,
    pub default: Option<DefaultValue>,
    pub id: bool,
    pub unique: bool,
}

/// Fields whose value is a credential: a lookup by one must match it exactly, byte for
/// byte, whatever the database's collation.
const SECRET_FIELDS: &[&str] = &[
    "token",
    "code",
    "challenge",
    "credentialId",
    "accessToken",
    "refreshToken",
    "clientSecret",
];

impl Field {
    /// Is this field a credential (a token, code, challenge, key or hash of one)?
    pub fn is_secret(&self) -> bool {
        self.ty == ScalarType::String
            && (self.name.ends_with("Hash") || SECRET_FIELDS.contains(&self.name.as_str()))
    }

    /// Is its value kept out of logs, events and spans? The credentials above, and the
    /// secrets no lookup compares (a TOTP seed, backup codes).
    pub fn is_redacted(&self) -> bool {
        self.is_secret() || UNCOMPARED_SECRET_FIELDS.contains(&self.name.as_str())
    }
}

/// Secret fields that are never a lookup key, so `is_secret`'s exact comparison does not
/// concern them.
const UNCOMPARED_SECRET_FIELDS: &[&str] = &["secret", "backupCodes"];

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub fields: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Where the model stands in `Schema::models` (and in `schemaJson()`).
    pub position: usize,
    pub name: String,
    pub table: String,
    pub fields: Vec<Field>,
    pub indexes: Vec<Index>,
}

impl Model {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Index of a field the method table names; a typo there is a programming error.
    pub fn field(&self, name: &str) -> usize {
        self.field_index(name)
            .unwrap_or_else(|| panic!("model {} has no field {name}", self.name))
    }

    pub fn id_field(&self) -> usize {
        self.fields
            .iter()
            .position(|f| f.id)
            .expect("every model has an @id")
    }

    /// Prisma's name for the unique index of a single column.
    pub fn unique_index_name(&self, field: &Field) -> String {
        format!("{}_{}_key", self.table, field.column)
    }
}

#[derive(Debug)]
pub struct Schema {
    pub models: Vec<Model>,
}

impl Schema {
    pub fn model(&self, name: &str) -> &Model {
        self.models
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("schema.prisma has no model {name}"))
    }
}

pub static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| parse(SCHEMA_PRISMA).expect("the embedded schema.prisma parses"));

/// Parses the subset of the Prisma schema language the KavachOS models use: scalar fields,
/// `?`, `@id`, `@unique`, `@default(literal)`, `@map("...")`, `@@map` and `@@index`.
pub fn parse(text: &str) -> Result<Schema, String> {
    let mut models = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = strip_comment(line).trim();
        let Some(rest) = line.strip_prefix("model ") else {
            continue;
        };
        let name = rest.trim_end_matches('{').trim().to_string();
        let mut model = Model {
            position: models.len(),
            table: name.clone(),
            name,
            fields: Vec::new(),
            indexes: Vec::new(),
        };
        let mut pending_indexes = Vec::new();
        loop {
            let Some((n, raw)) = lines.next() else {
                return Err(format!(
                    "line {}: model {} is not closed",
                    n + 1,
                    model.name
                ));
            };
            let line = strip_comment(raw).trim();
            if line == "}" {
                break;
            }
            if line.is_empty() {
                continue;
            }
            let at = |msg: String| format!("line {}: {msg}", n + 1);
            if let Some(attr) = line.strip_prefix("@@") {
                if let Some(args) = attr.strip_prefix("map(") {
                    model.table = quoted(args).ok_or_else(|| at("bad @@map".into()))?;
                } else if let Some(args) = attr.strip_prefix("index(") {
                    pending_indexes
                        .push(parse_index(args).ok_or_else(|| at("bad @@index".into()))?);
                } else {
                    return Err(at(format!("unsupported block attribute @@{attr}")));
                }
                continue;
            }
            model.fields.push(parse_field(line).map_err(at)?);
        }
        for (fields, map) in pending_indexes {
            let fields = fields
                .iter()
                .map(|f| {
                    model
                        .field_index(f)
                        .ok_or_else(|| format!("@@index on {} names unknown field {f}", model.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let name = map.unwrap_or_else(|| {
                let cols: Vec<&str> = fields
                    .iter()
                    .map(|&i| model.fields[i].column.as_str())
                    .collect();
                format!("{}_{}_idx", model.table, cols.join("_"))
            });
            model.indexes.push(Index { name, fields });
        }
        if !model.fields.iter().any(|f| f.id) {
            return Err(format!("line {}: model {} has no @id", n + 1, model.name));
        }
        models.push(model);
    }
    Ok(Schema { models })
}

fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(s[start..start + len].to_string())
}

fn parse_index(args: &str) -> Option<(Vec<String>, Option<String>)> {
    let open = args.find('[')? + 1;
    let close = args.find(']')?;
    let fields = args[open..close]
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let map = args[close..]
        .find("map:")
        .and_then(|i| quoted(&args[close + i..]));
    Some((fields, map))
}

fn parse_field(line: &str) -> Result<Field, String> {
    let mut parts = line.split_whitespace();
    let name = parts.next().ok_or("empty field")?.to_string();
    let ty_token = parts
        .next()
        .ok_or_else(|| format!("field {name} has no type"))?;
    let (ty_name, optional) = match ty_token.strip_suffix('?') {
        Some(t) => (t, true),
        None => (ty_token, false),
    };
    let ty = ScalarType::parse(ty_name)
        .ok_or_else(|| format!("field {name}: unsupported type {ty_name}"))?;
    let mut field = Field {
        column: name.clone(),
        name,
        ty,
        optional,
        default: None,
        id: false,
        unique: false,
    };
    let attrs = parts.collect::<Vec<_>>().join(" ");
    for attr in attrs.split('@').map(str::trim).filter(|a| !a.is_empty()) {
        if attr == "id" {
            field.id = true;
        } else if attr == "unique" {
            field.unique = true;
        } else if let Some(arg) = attr.strip_prefix("map(") {
            field.column = quoted(arg).ok_or_else(|| format!("field {}: bad @map", field.name))?;
        } else if let Some(arg) = attr.strip_prefix("default(") {
            let literal = arg.trim_end_matches(')').trim();
            field.default =
                Some(parse_default(literal, ty).ok_or_else(|| {
                    format!("field {}: unsupported default {literal}", field.name)
                })?);
        } else {
            return Err(format!(
                "field {}: unsupported attribute @{attr}",
                field.name
            ));
        }
    }
    Ok(field)
}

fn parse_default(literal: &str, ty: ScalarType) -> Option<DefaultValue> {
    match ty {
        ScalarType::String => quoted(literal).map(DefaultValue::String),
        ScalarType::Int => literal.parse().ok().map(DefaultValue::Int),
        ScalarType::Boolean => literal.parse().ok().map(DefaultValue::Boolean),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_declares_every_kavach_table() {
        let schema = &*SCHEMA;
        assert_eq!(schema.models.len(), 39);
        assert!(schema.models.iter().all(|m| m.table.starts_with("kavach_")));
        let user = schema.model("KavachUser");
        let banned = &user.fields[user.field("banned")];
        assert_eq!(banned.default, Some(DefaultValue::Boolean(false)));
        let email = &user.fields[user.field("email")];
        assert!(email.unique && !email.optional);
        assert_eq!(user.unique_index_name(email), "kavach_users_email_key");
        let audit = schema.model("KavachAuditLog");
        assert_eq!(audit.indexes.len(), 3);
        assert_eq!(audit.indexes[2].name, "kavach_audit_logs_timestamp_idx");
        let trust = schema.model("KavachTrustScore");
        assert_eq!(trust.fields[trust.id_field()].column, "agent_id");
    }

    #[test]
    fn rejects_what_it_cannot_represent() {
        assert!(parse("model A {\n id String @id @default(uuid())\n}").is_err());
        assert!(parse("model A {\n id Decimal @id\n}").is_err());
        assert!(parse("model A {\n name String\n}").is_err());
    }
}
