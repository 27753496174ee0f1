//! What a SQLite database holds before the adapter runs a call on it: the missing
//! tables are created, and each DateTime column's date format is read off its data.

use sqlx::sqlite::SqliteConnection;
use sqlx::Executor as _;

use crate::db::decode::DateFormats;
use crate::db::migrate::schema_change;
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, Result};
use crate::schema::{ScalarType, SCHEMA};
use crate::value::TimestampFormat;

/// With no `timestampFormat` option, each DateTime column of a table that was already
/// there keeps the format its data shows (integers below 1e11 are seconds, larger ones
/// milliseconds, text is ISO); an empty column declared INTEGER (KavachOS core's
/// Drizzle tables) takes seconds. Tables the adapter creates use ISO text, as Prisma 7.
pub(super) async fn detect_formats(
    conn: &mut SqliteConnection,
    option: Option<TimestampFormat>,
    created: &[String],
) -> Result<DateFormats> {
    let mut formats = DateFormats::uniform(option.unwrap_or(TimestampFormat::Iso8601));
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
            formats.set(model, index, format);
        }
    }
    Ok(formats)
}

/// Creates the tables of every model that has none yet, with their indexes, in one
/// `BEGIN IMMEDIATE` transaction so two processes starting at once do not collide.
/// Existing tables are left exactly as they are.
pub(super) async fn create_missing_tables(conn: &mut SqliteConnection) -> Result<Vec<String>> {
    let fail = |e| map_sqlx_error(e, None);
    conn.execute("BEGIN IMMEDIATE").await.map_err(fail)?;
    let result: Result<Vec<String>> = async {
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut *conn)
                .await
                .map_err(fail)?;
        let change = schema_change(&existing, Dialect::Sqlite);
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
