//! SQLite: connection options, schema creation and the date format of each column.
//! Statements run in `sqlite_conn.rs`; dates are stored as Prisma 7 stores them
//! (`2025-01-02T03:04:05.678+00:00` text), not in sqlx's own chrono format.

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor as _};

use std::collections::HashMap;
use std::sync::Arc;

use super::sqlite_executor::Executor;
use crate::config::{Config, Target};
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, KavachError, Result};
use crate::schema::{Model, ScalarType, SCHEMA};
use crate::value::TimestampFormat;

/// How each DateTime column of this database holds its dates.
#[derive(Debug)]
pub(super) struct DateFormats {
    default: TimestampFormat,
    /// Columns that differ from `default`: (table, field index).
    columns: HashMap<(String, usize), TimestampFormat>,
}

impl DateFormats {
    pub(super) fn default(&self) -> TimestampFormat {
        self.default
    }

    pub(super) fn of(&self, model: &Model, field: usize) -> TimestampFormat {
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
    // A 16 MB page cache per connection, as better-sqlite3 (under Prisma 7) is built
    // with; SQLite's own default of 2 MB re-reads a table of 10k agents on every scan.
    base.foreign_keys(true)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(config.busy_timeout)
        .pragma("cache_size", "-16000")
}

/// Opens the writer connection (creating missing tables) and, for a file, the reader
/// connections, and starts a thread on each. Also returns the tables it created.
pub(super) async fn connect(config: &Config, migrate: bool) -> Result<(Executor, Vec<String>)> {
    let options = connect_options(config);
    let open_error = |e: sqlx::Error| {
        let place = match &config.target {
            Target::File(path) => format!("the SQLite database file {}", path.display()),
            _ => "an in-memory SQLite database".to_string(),
        };
        KavachError::connection("P1003", format!("Cannot open {place}: {e}"))
    };
    let mut writer = SqliteConnection::connect_with(&options)
        .await
        .map_err(open_error)?;
    let created = match migrate {
        true => create_missing_tables(&mut writer).await?,
        false => Vec::new(),
    };
    let mut readers = Vec::new();
    if let Target::File(_) = config.target {
        let options = options.read_only(true);
        for _ in 0..config.read_connections {
            readers.push(
                SqliteConnection::connect_with(&options)
                    .await
                    .map_err(open_error)?,
            );
        }
    }
    let formats = detect_formats(&mut writer, config.timestamp_format, &created).await?;
    let executor = Executor::start(
        writer,
        readers,
        Arc::new(formats),
        tokio::runtime::Handle::current(),
    )
    .await?;
    Ok((executor, created))
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
