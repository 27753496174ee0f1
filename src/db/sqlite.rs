//! SQLite: connection options, binding, decoding and schema creation. Dates are stored
//! as Prisma 7 stores them (`2025-01-02T03:04:05.678+00:00` text); sqlx's own chrono
//! codec is not used because its format differs.

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous,
    SqliteValueRef,
};
use sqlx::{Connection, Decode, Executor, Sqlite, TypeInfo, ValueRef};

use std::collections::HashMap;

use super::pool::Pool;
use super::{decode_error, decode_row, Record};
use crate::config::{Config, Target};
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, KavachError, Result};
use crate::plan::Statement;
use crate::schema::{Field, Model, ScalarType, SCHEMA};
use crate::value::{format_iso_millis, parse_stored_date, TimestampFormat, Value};

/// How each DateTime column of this database holds its dates.
#[derive(Debug)]
pub(super) struct DateFormats {
    default: TimestampFormat,
    /// Columns that differ from `default`: (table, field index).
    columns: HashMap<(String, usize), TimestampFormat>,
}

impl DateFormats {
    fn of(&self, model: &Model, field: usize) -> TimestampFormat {
        if self.columns.is_empty() {
            return self.default;
        }
        *self
            .columns
            .get(&(model.table.clone(), field))
            .unwrap_or(&self.default)
    }
}

/// With no `timestampFormat` option, each DateTime column of a table that was already
/// there keeps the format its data shows (integers below 1e11 are seconds, larger ones
/// milliseconds, text is ISO); an empty column declared INTEGER (KavachOS core's
/// Drizzle tables) takes seconds. Tables the adapter creates use ISO text, as Prisma 7.
async fn detect_formats(
    conn: &mut SqliteConnection,
    option: Option<TimestampFormat>,
    created: &[String],
) -> Result<DateFormats> {
    let mut formats = DateFormats {
        default: option.unwrap_or(TimestampFormat::Iso8601),
        columns: HashMap::new(),
    };
    if option.is_some() {
        return Ok(formats);
    }
    let fail = |e| map_sqlx_error(e, None);
    for model in SCHEMA.models.iter().filter(|m| !created.contains(&m.table)) {
        let table = Dialect::Sqlite.quote(&model.table);
        let declared: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT name, type FROM pragma_table_info('{}')",
            model.table.replace('\'', "''")
        ))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
        for (index, field) in model.fields.iter().enumerate() {
            if field.ty != ScalarType::DateTime {
                continue;
            }
            let Some((_, declared_type)) = declared.iter().find(|(name, _)| *name == field.column)
            else {
                continue;
            };
            let column = Dialect::Sqlite.quote(&field.column);
            let sample: Option<(String, Option<f64>)> = sqlx::query_as(&format!(
                "SELECT typeof({column}), CASE WHEN typeof({column}) IN ('integer', 'real') THEN CAST({column} AS REAL) END FROM {table} WHERE {column} IS NOT NULL LIMIT 1"
            ))
            .fetch_optional(&mut *conn)
            .await
            .map_err(fail)?;
            let format = match sample {
                Some((_, Some(n))) if n.abs() < 1e11 => TimestampFormat::UnixSeconds,
                Some((_, Some(_))) => TimestampFormat::UnixMillis,
                Some(_) => TimestampFormat::Iso8601,
                None if declared_type.to_ascii_uppercase().contains("INT") => {
                    TimestampFormat::UnixSeconds
                }
                None => TimestampFormat::Iso8601,
            };
            if format != formats.default {
                formats.columns.insert((model.table.clone(), index), format);
            }
        }
    }
    Ok(formats)
}

fn connect_options(config: &Config) -> SqliteConnectOptions {
    let base = match &config.target {
        Target::File(path) => SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal),
        _ => SqliteConnectOptions::new(),
    };
    base.foreign_keys(true)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(config.busy_timeout)
}

/// Longest a read waits for a pooled connection.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the writer connection (creating missing tables) and, for a file, the read pool.
/// Also returns the date format of every column and the tables it created.
pub(super) async fn connect(
    config: &Config,
    migrate: bool,
) -> Result<(
    SqliteConnection,
    Option<Pool<SqliteConnection>>,
    DateFormats,
    Vec<String>,
)> {
    let options = connect_options(config);
    let mut writer = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| {
            let place = match &config.target {
                Target::File(path) => format!("the SQLite database file {}", path.display()),
                _ => "an in-memory SQLite database".to_string(),
            };
            KavachError::connection("P1003", format!("Cannot open {place}: {e}"))
        })?;
    let created = match migrate {
        true => create_missing_tables(&mut writer).await?,
        false => Vec::new(),
    };
    let readers = match config.target {
        Target::File(_) => {
            let options = options.read_only(true);
            Some(Pool::new(config.read_connections, READ_WAIT, move || {
                let options = options.clone();
                async move { SqliteConnection::connect_with(&options).await }
            }))
        }
        _ => None,
    };
    let formats = detect_formats(&mut writer, config.timestamp_format, &created).await?;
    Ok((writer, readers, formats, created))
}

/// Creates the tables of every model that has none yet, with their indexes, in one
/// `BEGIN IMMEDIATE` transaction so two processes starting at once do not collide.
/// Existing tables are left exactly as they are.
async fn create_missing_tables(conn: &mut SqliteConnection) -> Result<Vec<String>> {
    let fail = |e| map_sqlx_error(e, None);
    conn.execute("BEGIN IMMEDIATE").await.map_err(fail)?;
    let result: Result<Vec<String>> = async {
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut *conn)
                .await
                .map_err(fail)?;
        let change = super::schema_change(&existing, Dialect::Sqlite);
        for ddl in &change.statements {
            conn.execute(ddl.as_str()).await.map_err(fail)?;
        }
        let created = change.tables;
        Ok(created)
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute(end).await.map_err(fail)?;
    result
}

fn query<'q>(
    statement: &'q Statement,
    model: &Model,
    formats: &DateFormats,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    let mut query = sqlx::query(&statement.sql);
    for bound in &statement.params {
        query = match &bound.value {
            Value::Null => query.bind(None::<String>),
            Value::Bool(b) => query.bind(i64::from(*b)),
            Value::Int(i) => query.bind(*i),
            Value::Text(s) | Value::JsonText(s) => query.bind(s.as_str()),
            Value::DateTime(ms) => {
                let format = bound
                    .field
                    .map_or(formats.default, |f| formats.of(model, f));
                match format {
                    TimestampFormat::Iso8601 => query.bind(format_iso_millis(*ms)),
                    TimestampFormat::UnixMillis => query.bind(*ms),
                    TimestampFormat::UnixSeconds => query.bind(ms.div_euclid(1000)),
                }
            }
            Value::Json(json) => query.bind(json.to_string()),
        };
    }
    query
}

pub(super) async fn execute(
    conn: &mut SqliteConnection,
    formats: &DateFormats,
    statement: &Statement,
    model: &Model,
) -> std::result::Result<u64, sqlx::Error> {
    Ok(query(statement, model, formats)
        .execute(conn)
        .await?
        .rows_affected())
}

pub(super) async fn fetch(
    conn: &mut SqliteConnection,
    formats: &DateFormats,
    statement: &Statement,
    model: &'static Model,
    map: impl Fn(sqlx::Error) -> KavachError,
) -> Result<Vec<Record>> {
    let rows = query(statement, model, formats)
        .fetch_all(conn)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| {
            decode_row(model, row, |model, field, raw| {
                let format = match field.ty {
                    ScalarType::DateTime => formats.of(model, model.field(&field.name)),
                    _ => formats.default,
                };
                decode_cell(model, field, raw, format)
            })
        })
        .collect()
}

fn decode_cell(
    model: &Model,
    field: &Field,
    raw: SqliteValueRef<'_>,
    format: TimestampFormat,
) -> Result<Value> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    let bad = |what: String| decode_error(model, field, what);
    let text = |raw| <String as Decode<Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()));
    let int = |raw| <i64 as Decode<Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()));
    Ok(match field.ty {
        ScalarType::String => Value::Text(text(raw)?),
        ScalarType::Int => Value::Int(int(raw)?),
        ScalarType::Boolean => Value::Bool(int(raw)? != 0),
        ScalarType::DateTime => match storage.as_str() {
            "INTEGER" => Value::DateTime(format.from_integer(int(raw)?)),
            "REAL" => {
                let n = <f64 as Decode<Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()))?;
                Value::DateTime(format.from_integer(n as i64))
            }
            _ => {
                let s = text(raw)?;
                Value::DateTime(
                    parse_stored_date(&s).ok_or_else(|| bad(format!("'{s}' is not a date")))?,
                )
            }
        },
        // A JSONB column has NUMERIC affinity: a bare JSON number is stored as a number.
        ScalarType::Json => match storage.as_str() {
            "INTEGER" => Value::Json(int(raw)?.into()),
            "REAL" => {
                let n = <f64 as Decode<Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()))?;
                Value::Json(
                    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into),
                )
            }
            _ => {
                let s = text(raw)?;
                Value::Json(
                    serde_json::from_str(&s).map_err(|e| bad(format!("invalid JSON ({e})")))?,
                )
            }
        },
    })
}
