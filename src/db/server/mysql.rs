//! MySQL / MariaDB: pool from Prisma's URL parameters, binding (DATETIME(3) in UTC, JSON
//! as text), decoding (MariaDB's JSON arrives as LONGTEXT bytes) and schema creation
//! under a named lock. MySQL has no RETURNING: plans read written rows back.

use chrono::NaiveDateTime;
use sqlx::mysql::{
    MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlSslMode, MySqlValueRef,
};
use sqlx::{Connection as _, Decode, Executor, Row, ValueRef};

use super::pool::Pool;
use super::postgres::default_pool_size;
use crate::config::Server;
use crate::db::decode::{self, decode_error, Cell};
use crate::db::interpreter::{Connection, Queryable, Record};
use crate::db::migrate::schema_change;
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, ErrorContext, KavachError, Result};
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

pub(super) struct Driver;

impl super::Driver for Driver {
    type Conn = MySqlConnection;

    async fn connect(
        server: &Server,
        migrate: bool,
    ) -> Result<(Pool<MySqlConnection>, Vec<String>)> {
        connect(server, migrate).await
    }

    async fn probe(server: &Server) -> std::result::Result<(), sqlx::Error> {
        probe(server).await
    }

    async fn wal_position(_: &mut MySqlConnection, _: bool) -> Result<u64> {
        Err(KavachError::validation(
            "createAdapter",
            "`replicas` are available on PostgreSQL only",
        ))
    }
}

/// Also returns the tables it created.
async fn connect(server: &Server, migrate: bool) -> Result<(Pool<MySqlConnection>, Vec<String>)> {
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
async fn probe(server: &Server) -> std::result::Result<(), sqlx::Error> {
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
        let change = schema_change(&existing, Dialect::Mysql);
        for ddl in &change.statements {
            Executor::execute(&mut *conn, ddl.as_str()).await.map_err(fail)?;
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

impl Queryable for MySqlConnection {
    async fn query(&mut self, statement: &Statement, model: &'static Model) -> Result<Vec<Record>> {
        let map = |e| map_sqlx_error(e, Some(&ErrorContext { model }));
        let rows = query(statement).fetch_all(&mut *self).await.map_err(map)?;
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
        let done = query(statement).execute(&mut *self).await.map_err(map)?;
        Ok(done.rows_affected())
    }
}

impl Connection for MySqlConnection {
    async fn raw(&mut self, sql: &str) -> Result<()> {
        Executor::execute(&mut *self, sql)
            .await
            .map(drop)
            .map_err(|e| map_sqlx_error(e, None))
    }
}

/// One column as the field's type asks for it. Text, JSON (MariaDB: LONGTEXT) and
/// binary-collated columns all arrive as bytes.
fn read_cell<'r>(model: &Model, field: &Field, raw: MySqlValueRef<'r>) -> Result<Cell<'r>> {
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let bad = |e: sqlx::error::BoxDynError| decode_error(model, field, e);
    Ok(match field.ty {
        ScalarType::String | ScalarType::Json => {
            let bytes = <&[u8] as Decode<MySql>>::decode(raw).map_err(bad)?;
            Cell::Text(std::str::from_utf8(bytes).map_err(|e| bad(Box::new(e)))?)
        }
        ScalarType::Int | ScalarType::Boolean => {
            Cell::Int(<i64 as Decode<MySql>>::decode(raw).map_err(bad)?)
        }
        ScalarType::DateTime => Cell::DateTime(
            <NaiveDateTime as Decode<MySql>>::decode(raw)
                .map_err(bad)?
                .and_utc()
                .timestamp_millis(),
        ),
    })
}
