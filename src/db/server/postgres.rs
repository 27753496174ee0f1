//! PostgreSQL: pool and session settings from Prisma's URL parameters, binding with
//! typed values (TIMESTAMP(3) as UTC, JSONB), decoding (also TIMESTAMPTZ, as KavachOS
//! core creates), and schema creation under an advisory lock.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::value::RawValue;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgSslMode, PgValueRef, Postgres,
};
use sqlx::types::Json;
use sqlx::{Connection as _, Decode, Executor, Row, TypeInfo, ValueRef};

use super::pool::Pool;
use crate::config::Server;
use crate::db::decode::{self, decode_error, Cell};
use crate::db::interpreter::{Connection, Queryable, Record};
use crate::db::migrate::schema_change;
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, ErrorContext, KavachError, Result};
use crate::plan::Statement;
use crate::schema::{Field, Model, ScalarType};
use crate::value::Value;

/// An arbitrary constant naming the advisory lock that serialises schema creation.
const SCHEMA_LOCK: i64 = 0x6b61_7661_6368;

fn connect_options(server: &Server) -> Result<PgConnectOptions> {
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&server.host)
        .port(server.port)
        .username(&server.user)
        .application_name(
            server
                .application_name
                .as_deref()
                .unwrap_or("kavach-native"),
        );
    if let Some(socket) = &server.socket {
        options = options.socket(socket);
    }
    if let Some(password) = &server.password {
        options = options.password(password);
    }
    if let Some(database) = &server.database {
        options = options.database(database);
    }
    if let Some(mode) = &server.ssl_mode {
        let mode = PgSslMode::from_str(mode).map_err(|_| {
            KavachError::validation(
                "createAdapter",
                format!("sslmode '{mode}' is not one of disable, prefer, require, verify-ca, verify-full"),
            )
        })?;
        options = options.ssl_mode(mode);
    }
    if let Some(path) = &server.ssl_root_cert {
        options = options.ssl_root_cert(path);
    }
    if let Some(path) = &server.ssl_cert {
        options = options.ssl_client_cert(path);
    }
    if let Some(path) = &server.ssl_key {
        options = options.ssl_client_key(path);
    }
    let cache = if server.pgbouncer {
        0
    } else {
        server.statement_cache_size.unwrap_or(100)
    };
    Ok(options.statement_cache_capacity(cache))
}

/// Session set-up on every new connection: UTC (TIMESTAMP(3) holds UTC, as Prisma
/// writes it), the `schema` search path and `socket_timeout` as a statement timeout.
fn session_sql(server: &Server) -> String {
    let mut sql = String::from("SET TIME ZONE 'UTC'");
    if let Some(schema) = &server.schema {
        sql.push_str(&format!(
            "; SET search_path TO {}",
            Dialect::Postgres.quote(schema)
        ));
    }
    if let Some(timeout) = server.socket_timeout {
        sql.push_str(&format!(
            "; SET statement_timeout = {}",
            timeout.as_millis()
        ));
    }
    sql
}

pub(super) struct Driver;

impl super::Driver for Driver {
    type Conn = PgConnection;

    async fn connect(server: &Server, migrate: bool) -> Result<(Pool<PgConnection>, Vec<String>)> {
        connect(server, migrate).await
    }

    async fn probe(server: &Server) -> std::result::Result<(), sqlx::Error> {
        probe(server).await
    }
}

/// Also returns the tables it created.
async fn connect(server: &Server, migrate: bool) -> Result<(Pool<PgConnection>, Vec<String>)> {
    let options = connect_options(server)?;
    let session = session_sql(server);
    let pool = Pool::new(
        server.connection_limit.unwrap_or(default_pool_size()),
        server.pool_timeout.max(server.connect_timeout),
        move || {
            let (options, session) = (options.clone(), session.clone());
            async move {
                let mut conn = PgConnection::connect_with(&options).await?;
                Executor::execute(&mut conn, session.as_str()).await?;
                Ok(conn)
            }
        },
    );
    if !migrate {
        return Ok((pool, Vec::new()));
    }
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return Err(super::acquire_error(e, server, probe(server)).await),
    };
    let created = create_missing_tables(&mut conn, server.schema.as_deref()).await?;
    drop(conn);
    Ok((pool, created))
}

/// Prisma's default pool size: cores × 2 + 1.
pub(super) fn default_pool_size() -> u32 {
    std::thread::available_parallelism().map_or(4, |n| n.get() as u32) * 2 + 1
}

/// One direct connection attempt, to tell an unreachable server from a busy pool.
async fn probe(server: &Server) -> std::result::Result<(), sqlx::Error> {
    let options =
        connect_options(server).map_err(|e| sqlx::Error::Configuration(e.message.into()))?;
    PgConnection::connect_with(&options).await?.close().await
}

/// Creates missing tables; an advisory lock makes concurrent starts safe.
async fn create_missing_tables(
    conn: &mut PgConnection,
    schema: Option<&str>,
) -> Result<Vec<String>> {
    let fail = |e| map_sqlx_error(e, None);
    let mut tx = conn.begin().await.map_err(fail)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    if let Some(schema) = schema {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            Dialect::Postgres.quote(schema)
        );
        Executor::execute(&mut *tx, sql.as_str())
            .await
            .map_err(fail)?;
    }
    let existing: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?;
    let change = schema_change(&existing, Dialect::Postgres);
    for ddl in &change.statements {
        Executor::execute(&mut *tx, ddl.as_str())
            .await
            .map_err(fail)?;
    }
    let created = change.tables;
    tx.commit().await.map_err(fail)?;
    Ok(created)
}

/// Pages of a sorted list (`ORDER BY … LIMIT`) are planned for each call's values, as
/// Prisma and node-postgres have them planned: a cached statement falls back to a generic
/// plan after five runs, and for `queryAuditLogs` that plan walks the timestamp index and
/// filters out thousands of rows where the agent index reads a hundred.
fn planned_per_call(sql: &str) -> bool {
    sql.contains(" ORDER BY ") && sql.contains(" LIMIT ")
}

fn query(
    statement: &Statement,
) -> std::result::Result<sqlx::query::Query<'_, Postgres, PgArguments>, sqlx::Error> {
    let mut query = sqlx::query(&statement.sql).persistent(!planned_per_call(&statement.sql));
    for bound in &statement.params {
        query = match (&bound.value, bound.ty) {
            (Value::Null, ScalarType::String) => query.bind(None::<String>),
            (Value::Null, ScalarType::Int) => query.bind(None::<i64>),
            (Value::Null, ScalarType::Boolean) => query.bind(None::<bool>),
            (Value::Null, ScalarType::DateTime) => query.bind(None::<NaiveDateTime>),
            (Value::Null, ScalarType::Json) => query.bind(None::<Json<Box<RawValue>>>),
            (Value::Bool(b), _) => query.bind(*b),
            (Value::Int(i), _) => query.bind(*i),
            (Value::Text(s), _) => query.bind(s.as_str()),
            (Value::DateTime(ms), _) => query.bind(crate::value::naive_utc_millis(*ms)),
            (Value::JsonText(text), _) => {
                let raw = RawValue::from_string(text.clone())
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                query.bind(Json(raw))
            }
            (Value::Json(json), _) => query.bind(Json(json.clone())),
        };
    }
    Ok(query)
}

impl Queryable for PgConnection {
    async fn query(&mut self, statement: &Statement, model: &'static Model) -> Result<Vec<Record>> {
        let map = |e| map_sqlx_error(e, Some(&ErrorContext { model }));
        let rows = query(statement)
            .map_err(map)?
            .fetch_all(&mut *self)
            .await
            .map_err(map)?;
        rows.iter()
            .map(|row| {
                decode::record(model, None, |i, field| {
                    let raw = row
                        .try_get_raw(i)
                        .map_err(|e| decode_error(model, field, e))?;
                    read_cell(model, field, raw)
                })
            })
            .collect()
    }

    async fn execute(&mut self, statement: &Statement, model: &'static Model) -> Result<u64> {
        let map = |e| map_sqlx_error(e, Some(&ErrorContext { model }));
        let query = query(statement).map_err(map)?;
        Ok(query
            .execute(&mut *self)
            .await
            .map_err(map)?
            .rows_affected())
    }
}

impl Connection for PgConnection {
    async fn raw(&mut self, sql: &str) -> Result<()> {
        Executor::execute(&mut *self, sql)
            .await
            .map(drop)
            .map_err(|e| map_sqlx_error(e, None))
    }
}

/// One column as the field's type asks for it.
fn read_cell<'r>(model: &Model, field: &Field, raw: PgValueRef<'r>) -> Result<Cell<'r>> {
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let column_type = raw.type_info().name().to_string();
    let bad = |e: sqlx::error::BoxDynError| decode_error(model, field, e);
    Ok(match (field.ty, column_type.as_str()) {
        (ScalarType::Int, "INT2") => {
            Cell::Int(<i16 as Decode<Postgres>>::decode(raw).map_err(bad)?.into())
        }
        (ScalarType::Int, "INT4") => {
            Cell::Int(<i32 as Decode<Postgres>>::decode(raw).map_err(bad)?.into())
        }
        (ScalarType::Int, _) => Cell::Int(<i64 as Decode<Postgres>>::decode(raw).map_err(bad)?),
        (ScalarType::Boolean, _) => {
            Cell::Bool(<bool as Decode<Postgres>>::decode(raw).map_err(bad)?)
        }
        (ScalarType::DateTime, "TIMESTAMPTZ") => Cell::DateTime(
            <DateTime<Utc> as Decode<Postgres>>::decode(raw)
                .map_err(bad)?
                .timestamp_millis(),
        ),
        (ScalarType::DateTime, _) => Cell::DateTime(
            <NaiveDateTime as Decode<Postgres>>::decode(raw)
                .map_err(bad)?
                .and_utc()
                .timestamp_millis(),
        ),
        (ScalarType::Json, "JSON" | "JSONB") => Cell::Json(
            <Json<serde_json::Value> as Decode<Postgres>>::decode(raw)
                .map_err(bad)?
                .0,
        ),
        (ScalarType::Json, _) => {
            let text = <&str as Decode<Postgres>>::decode(raw).map_err(bad)?;
            Cell::Json(serde_json::from_str(text).map_err(|e| bad(Box::new(e)))?)
        }
        (ScalarType::String, _) => {
            Cell::Text(<&str as Decode<Postgres>>::decode(raw).map_err(bad)?)
        }
    })
}
