//! MySQL / MariaDB: pool from Prisma's URL parameters, binding (DATETIME(3) in UTC, JSON
//! as text), decoding (MariaDB's JSON arrives as LONGTEXT bytes) and schema creation
//! under a named lock. MySQL has no RETURNING: plans read written rows back.

use chrono::NaiveDateTime;
use sqlx::mysql::{
    MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlSslMode, MySqlValueRef,
};
use sqlx::{Connection, Decode, Executor, ValueRef};

use super::pool::Pool;
use super::postgres::default_pool_size;
use super::{decode_error, decode_row, Record};
use crate::config::Server;
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, KavachError, Result};
use crate::plan::Statement;
use crate::schema::{Field, Model, ScalarType};
use crate::value::Value;

const SCHEMA_LOCK: &str = "kavach_native_schema";

fn connect_options(server: &Server) -> MySqlConnectOptions {
    let mut options = MySqlConnectOptions::new()
        .host(&server.host)
        .port(server.port)
        .username(&server.user)
        .charset("utf8mb4")
        .timezone(Some("+00:00".to_string()));
    if let Some(socket) = &server.socket {
        options = options.socket(socket);
    }
    if let Some(password) = &server.password {
        options = options.password(password);
    }
    if let Some(database) = &server.database {
        options = options.database(database);
    }
    // Prisma's `sslaccept`: `strict` verifies the certificate, `accept_invalid_certs` does not.
    match server.ssl_mode.as_deref() {
        Some("strict") => options = options.ssl_mode(MySqlSslMode::VerifyCa),
        Some("accept_invalid_certs") => options = options.ssl_mode(MySqlSslMode::Required),
        _ => {}
    }
    if let Some(path) = server.ssl_root_cert.as_ref().or(server.ssl_cert.as_ref()) {
        options = options.ssl_ca(path);
    }
    options.statement_cache_capacity(server.statement_cache_size.unwrap_or(100))
}

/// Also returns the tables it created.
pub(super) async fn connect(
    server: &Server,
    migrate: bool,
) -> Result<(Pool<MySqlConnection>, Vec<String>)> {
    let options = connect_options(server);
    let pool = Pool::new(
        server.connection_limit.unwrap_or(default_pool_size()),
        server.pool_timeout.max(server.connect_timeout),
        move || {
            let options = options.clone();
            async move { MySqlConnection::connect_with(&options).await }
        },
    );
    if !migrate {
        return Ok((pool, Vec::new()));
    }
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return Err(super::acquire_error(e, server, probe(server)).await),
    };
    let created = create_missing_tables(&mut conn).await?;
    drop(conn);
    Ok((pool, created))
}

/// One direct connection attempt, to tell an unreachable server from a busy pool.
pub(super) async fn probe(server: &Server) -> std::result::Result<(), sqlx::Error> {
    MySqlConnection::connect_with(&connect_options(server))
        .await?
        .close()
        .await
}

/// Creates missing tables under `GET_LOCK`, so concurrent starts do not collide.
async fn create_missing_tables(conn: &mut MySqlConnection) -> Result<Vec<String>> {
    let fail = |e| map_sqlx_error(e, None);
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
        .bind(SCHEMA_LOCK)
        .fetch_one(&mut *conn)
        .await
        .map_err(fail)?;
    if locked != Some(1) {
        return Err(KavachError::database(
            "Timed out waiting for another process to create the kavach_* tables",
        ));
    }
    let result: Result<Vec<String>> = async {
        let existing: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT CAST(table_name AS BINARY) FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
        let existing: Vec<String> = existing.into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect();
        let change = super::schema_change(&existing, Dialect::Mysql);
        for ddl in &change.statements {
            conn.execute(ddl.as_str()).await.map_err(fail)?;
        }
        let created = change.tables;
        Ok(created)
    }
    .await;
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *conn)
        .await;
    result
}

fn query(statement: &Statement) -> sqlx::query::Query<'_, MySql, MySqlArguments> {
    let mut query = sqlx::query(&statement.sql);
    for bound in &statement.params {
        query = match &bound.value {
            Value::Null => query.bind(None::<String>),
            Value::Bool(b) => query.bind(*b),
            Value::Int(i) => query.bind(*i),
            Value::Text(s) | Value::JsonText(s) => query.bind(s.as_str()),
            Value::DateTime(ms) => query.bind(crate::value::naive_utc_millis(*ms)),
            Value::Json(json) => query.bind(json.to_string()),
        };
    }
    query
}

pub(super) async fn execute(
    conn: &mut MySqlConnection,
    statement: &Statement,
) -> std::result::Result<u64, sqlx::Error> {
    Ok(query(statement).execute(conn).await?.rows_affected())
}

pub(super) async fn fetch(
    conn: &mut MySqlConnection,
    statement: &Statement,
    model: &'static Model,
    map: impl Fn(sqlx::Error) -> KavachError,
) -> Result<Vec<Record>> {
    let rows = query(statement).fetch_all(conn).await.map_err(map)?;
    rows.iter()
        .map(|row| decode_row(model, row, decode_cell))
        .collect()
}

fn decode_cell(model: &Model, field: &Field, raw: MySqlValueRef<'_>) -> Result<Value> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let bad = |e: sqlx::error::BoxDynError| decode_error(model, field, e);
    // Text, JSON (MariaDB: LONGTEXT) and binary-collated columns all arrive as bytes.
    let text = |raw| -> Result<String> {
        let bytes = <&[u8] as Decode<MySql>>::decode(raw).map_err(bad)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| bad(Box::new(e)))
    };
    Ok(match field.ty {
        ScalarType::String => Value::Text(text(raw)?),
        ScalarType::Int => Value::Int(<i64 as Decode<MySql>>::decode(raw).map_err(bad)?),
        ScalarType::Boolean => Value::Bool(<i64 as Decode<MySql>>::decode(raw).map_err(bad)? != 0),
        ScalarType::DateTime => Value::DateTime(
            <NaiveDateTime as Decode<MySql>>::decode(raw)
                .map_err(bad)?
                .and_utc()
                .timestamp_millis(),
        ),
        ScalarType::Json => Value::JsonText(text(raw)?),
    })
}
