//! Every failure the adapter reports, with the Prisma code a Prisma user already handles.
//! The single place where driver errors become Prisma's.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// Bad input: Prisma's `PrismaClientValidationError` (no code).
    Validation,
    /// A known request error with a Prisma code (P2002, P2025, P2028, ...).
    Known(&'static str),
    /// Could not reach or open the database (Prisma's P1001-style init errors).
    Connection(&'static str),
    /// Anything else the database reported.
    Database,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub model_name: Option<String>,
    /// The fields of a violated unique constraint.
    pub target: Option<Vec<String>>,
    /// What a P2025 was doing ("an update", "a delete").
    pub operation: Option<&'static str>,
    /// The table (P2021) or column (P2022) found missing; boxed, as it is rare.
    pub missing: Option<Box<Missing>>,
}

/// A table or column a statement names and the database lacks.
#[derive(Debug, Clone, PartialEq)]
pub enum Missing {
    Table(String),
    Column(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KavachError {
    pub kind: ErrorKind,
    pub message: String,
    pub meta: Meta,
}

pub type Result<T, E = KavachError> = std::result::Result<T, E>;

impl KavachError {
    pub fn validation(method: &str, message: impl fmt::Display) -> Self {
        Self {
            kind: ErrorKind::Validation,
            message: format!("Invalid `{method}()` invocation: {message}"),
            meta: Meta::default(),
        }
    }

    pub fn unique_violation(model: &str, fields: Vec<String>) -> Self {
        let list = fields
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            kind: ErrorKind::Known("P2002"),
            message: format!("Unique constraint failed on the fields: ({list})"),
            meta: Meta {
                model_name: Some(model.into()),
                target: Some(fields),
                ..Meta::default()
            },
        }
    }

    /// P2025: an update or delete found no row.
    pub fn record_not_found(model: &str, operation: &'static str) -> Self {
        Self {
            kind: ErrorKind::Known("P2025"),
            message: format!(
                "An operation failed because it depends on one or more records that were required but not found. No record was found for {operation}."
            ),
            meta: Meta {
                model_name: Some(model.into()),
                operation: Some(operation),
                ..Meta::default()
            },
        }
    }

    /// P2021: a table the model needs is not in the database (created by hand, or
    /// `skipMigrations`).
    pub fn table_missing(model: Option<&str>, table: &str) -> Self {
        Self {
            kind: ErrorKind::Known("P2021"),
            message: format!("The table `{table}` does not exist in the current database."),
            meta: Meta {
                model_name: model.map(Into::into),
                missing: Some(Box::new(Missing::Table(table.into()))),
                ..Meta::default()
            },
        }
    }

    /// P2022: a column the model needs is not in its table.
    pub fn column_missing(model: Option<&str>, column: &str) -> Self {
        Self {
            kind: ErrorKind::Known("P2022"),
            message: format!("The column `{column}` does not exist in the current database."),
            meta: Meta {
                model_name: model.map(Into::into),
                missing: Some(Box::new(Missing::Column(column.into()))),
                ..Meta::default()
            },
        }
    }

    /// P2028: the interactive transaction API misused (closed, expired, not started in time).
    pub fn transaction(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Known("P2028"),
            message: format!("Transaction API error: {}", message.into()),
            meta: Meta::default(),
        }
    }

    pub fn connection(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Connection(code),
            message: message.into(),
            meta: Meta::default(),
        }
    }

    pub fn database(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Database,
            message: message.into(),
            meta: Meta::default(),
        }
    }

    /// The error as a call of `method` reports it: its message starts by naming the
    /// method, as Prisma's do (validation errors already do).
    pub fn in_method(mut self, method: &str) -> Self {
        if !self.message.starts_with("Invalid `") {
            self.message = format!("Invalid `{method}()` invocation: {}", self.message);
        }
        self
    }

    /// A panic caught inside the adapter: a bug, reported on the call that hit it.
    pub fn internal(panic: &(dyn std::any::Any + Send)) -> Self {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown cause");
        Self::database(format!(
            "kavach-native internal error ({what}); the call was not completed and the adapter goes on. Please report this."
        ))
    }

    pub fn code(&self) -> Option<&'static str> {
        match self.kind {
            ErrorKind::Known(code) | ErrorKind::Connection(code) => Some(code),
            _ => None,
        }
    }

    /// The JS `Error.name` users see, as Prisma names its error classes.
    pub fn js_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::Validation => "PrismaClientValidationError",
            ErrorKind::Known(_) => "PrismaClientKnownRequestError",
            // Prisma 7 with a driver adapter reports connection failures from the first
            // query, as known request errors (P1000, P1001, P1003, P1010, P1011).
            ErrorKind::Connection(_) => "PrismaClientKnownRequestError",
            ErrorKind::Database => "PrismaClientUnknownRequestError",
        }
    }
}

impl fmt::Display for KavachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KavachError {}

/// What a statement was doing when the driver failed, so the error can name it.
pub struct ErrorContext<'a> {
    pub model: &'a crate::schema::Model,
}

/// Maps a driver error to Prisma's shape. Unique violations name the model's fields
/// (resolved from the columns or index name the database reports).
pub fn map_sqlx_error(err: sqlx::Error, ctx: Option<&ErrorContext>) -> KavachError {
    let known = |code: &'static str, message: String| KavachError {
        kind: ErrorKind::Known(code),
        message,
        meta: Meta::default(),
    };
    match err {
        sqlx::Error::Database(db) => {
            let unique = db.kind() == sqlx::error::ErrorKind::UniqueViolation;
            let code = database_error_code(db.as_ref());
            map_database_error(&code, db.message(), unique, ctx)
        }
        sqlx::Error::PoolTimedOut => known(
            "P2024",
            "Timed out fetching a new connection from the connection pool.".into(),
        ),
        sqlx::Error::PoolClosed => {
            KavachError::database("The adapter was closed: create a new one.")
        }
        sqlx::Error::Io(e) => connection_lost(&e.to_string()),
        sqlx::Error::Protocol(e) => connection_lost(&e),
        other => KavachError::database(format!("Database error: {other}")),
    }
}

/// The database's own code for an error: SQLite's extended result code, PostgreSQL's
/// SQLSTATE, MySQL's error number (its SQLSTATE is only a category: 1045 and 1044 are
/// both 28000).
pub fn database_error_code(db: &dyn sqlx::error::DatabaseError) -> String {
    match db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        Some(mysql) => mysql.number().to_string(),
        None => db.code().map(|c| c.into_owned()).unwrap_or_default(),
    }
}

/// Maps an error the database reported (its code as text: SQLite's extended result
/// code, PostgreSQL's SQLSTATE, MySQL's error number) to Prisma's shape.
pub fn map_database_error(
    code: &str,
    message: &str,
    unique: bool,
    ctx: Option<&ErrorContext>,
) -> KavachError {
    let known = |code: &'static str, message: String| KavachError {
        kind: ErrorKind::Known(code),
        message,
        meta: Meta::default(),
    };
    if unique {
        if let Some(ctx) = ctx {
            let fields = unique_fields_from_message(ctx.model, message);
            return KavachError::unique_violation(&ctx.model.name, fields);
        }
    }
    if matches!(code, "42P05" | "26000") && message.contains("\"sqlx_s_") {
        return KavachError {
            kind: ErrorKind::Known("P2039"),
            message: format!("Database error. Code: `{code}`. Message: `{message}`: {POOLER_HINT}"),
            meta: Meta::default(),
        };
    }
    let model = ctx.map(|ctx| ctx.model.name.as_str());
    if let Some(missing) = missing_object(code, message) {
        return match missing {
            Missing::Table(table) => KavachError::table_missing(model, &table),
            Missing::Column(column) => KavachError::column_missing(model, &column),
        };
    }
    match code {
        // SQLITE_BUSY and its extended codes.
        "5" | "261" | "517" | "773" => known(
            "P1008",
            format!("Operations timed out: the database is locked ({message})"),
        ),
        // PostgreSQL serialization failure / deadlock; MySQL deadlock / lock wait.
        "40001" | "40P01" | "1213" | "1205" => known(
            "P2034",
            format!(
                "Transaction failed due to a write conflict or a deadlock. Please retry your transaction ({message})"
            ),
        ),
        // PostgreSQL / MySQL: a string longer than its column (VARCHAR(191)).
        "22001" | "1406" => known(
            "P2000",
            format!("The provided value for the column is too long for the column's type: {message}"),
        ),
        // A value does not fit its column (PostgreSQL numeric range, MySQL out of range).
        "22003" | "1264" => known(
            "P2020",
            format!("Value out of range for the type: {message}"),
        ),
        // PostgreSQL: the server ended this session (admin command, shutdown).
        "57P01" | "57P02" | "57P03" => connection_lost(message),
        // MySQL: server gone away / lost connection.
        "2006" | "2013" => connection_lost(message),
        // Prisma 7 reports what it does not map itself (a NUL byte in PostgreSQL text,
        // 22021; an aborted transaction, 25P02; ...) as P2039 with the database's code.
        "" => KavachError::database(format!("Database error: {message}")),
        code => KavachError {
            kind: ErrorKind::Known("P2039"),
            message: format!("Database error. Code: `{code}`. Message: `{message}`"),
            meta: Meta::default(),
        },
    }
}

/// Why one of this adapter's named prepared statements already exists on its server, or
/// no longer does: the connection reaches a different server connection from one
/// statement to the next, as through PgBouncer in transaction pooling.
const POOLER_HINT: &str = "the connection goes through a pooler in transaction mode (PgBouncer?), where named prepared statements cannot work; add `pgbouncer=true` to the URL";

/// Is `err` the sign of a transaction pooler met without `pgbouncer=true`? After it, the
/// adapter's cached statements cannot be trusted to be its own.
pub fn is_pooler_misuse(err: &KavachError) -> bool {
    err.message.ends_with(POOLER_HINT)
}

/// A connection refused by PgBouncer for a startup parameter (sqlx's
/// `extra_float_digits`), with the fix.
pub fn pooler_refusal_hint(message: &str) -> Option<&'static str> {
    message.contains("unsupported startup parameter").then_some(
        "a connection pooler (PgBouncer?) refused a startup parameter; add `pgbouncer=true` to the URL",
    )
}

/// A table or column the statement names and the database lacks, from the error the
/// database reported: SQLite `no such table: t` / `no such column: c` / `table t has no
/// column named c` (code 1), PostgreSQL 42P01 / 42703, MySQL 1146 / 1054.
fn missing_object(code: &str, message: &str) -> Option<Missing> {
    let quoted = |open: char, close: char| -> Option<String> {
        let start = message.find(open)? + 1;
        let end = start + message[start..].find(close)?;
        Some(message[start..end].to_string())
    };
    let after = |prefix: &str| -> Option<String> {
        let start = message.find(prefix)? + prefix.len();
        Some(message[start..].trim().to_string())
    };
    match code {
        "1" => after("no such table:").map(Missing::Table).or_else(|| {
            after("no such column:")
                .or_else(|| after("has no column named"))
                .map(Missing::Column)
        }),
        "42P01" => quoted('"', '"').map(Missing::Table),
        "42703" => quoted('"', '"').map(Missing::Column),
        "1146" => quoted('\'', '\'').map(|t| {
            // `db.table`: Prisma names the table alone.
            Missing::Table(t.rsplit('.').next().unwrap_or(&t).to_string())
        }),
        "1054" => quoted('\'', '\'').map(Missing::Column),
        _ => None,
    }
}

/// P1017: the server closed the connection; the call can be retried on another one.
fn connection_lost(reason: &str) -> KavachError {
    KavachError {
        kind: ErrorKind::Known("P1017"),
        message: format!("Server has closed the connection ({reason})."),
        meta: Meta::default(),
    }
}

/// SQLite reports `UNIQUE constraint failed: kavach_users.email, kavach_users.x`;
/// others name the index. Either way, answer with the model's field names.
fn unique_fields_from_message(model: &crate::schema::Model, message: &str) -> Vec<String> {
    let mut fields = Vec::new();
    if let Some((_, cols)) = message.split_once("constraint failed:") {
        for qualified in cols.split(',') {
            let column = qualified.trim().rsplit('.').next().unwrap_or_default();
            if let Some(f) = model.fields.iter().find(|f| f.column == column) {
                fields.push(f.name.clone());
            }
        }
    }
    if fields.is_empty() {
        for f in &model.fields {
            if (f.unique || f.id) && message.contains(&model.unique_index_name(f)) {
                fields.push(f.name.clone());
            }
        }
    }
    if fields.is_empty() {
        if let Some(id) = model.fields.iter().find(|f| f.id) {
            if message.contains("PRIMARY") || message.contains("pkey") {
                fields.push(id.name.clone());
            }
        }
    }
    fields
}
