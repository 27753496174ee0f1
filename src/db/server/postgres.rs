//! PostgreSQL: pool and session settings from Prisma's URL parameters, binding with
//! typed values (TIMESTAMP(3) as UTC, JSONB), decoding (also TIMESTAMPTZ, as KavachOS
//! core creates), and schema creation under an advisory lock.
//!
//! Behind PgBouncer in transaction pooling (`pgbouncer=true`) a client connection is
//! given a server connection only for one transaction at a time, so nothing may live in
//! the session: no named prepared statement (another client's would collide with it, or
//! answer in its place), no `SET` (it would stay on the server for the next client).
//! sqlx also sends an unnamed statement's Parse and its Bind in two round trips, between
//! which PgBouncer may hand the server to another client: so there every statement runs
//! inside a transaction, and the session settings are `SET LOCAL` in it ([`PgConn`]).

use std::str::FromStr;
use std::sync::{Arc, Mutex};

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
use crate::error::{is_pooler_misuse, map_sqlx_error, ErrorContext, KavachError, Result};
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
    if server.pgbouncer {
        // PgBouncer refuses startup parameters it does not track (unless configured to
        // ignore them); TimeZone, which sqlx sends too, it tracks.
        return Ok(options.statement_cache_capacity(0).extra_float_digits(None));
    }
    Ok(options.statement_cache_capacity(server.statement_cache_size.unwrap_or(100)))
}

/// The session settings: UTC (TIMESTAMP(3) holds UTC, as Prisma writes it), the `schema`
/// search path and `socket_timeout` as a statement timeout; `scope` is `SET` for a
/// session, `SET LOCAL` for one transaction.
fn session_sql(server: &Server, scope: &str) -> String {
    let mut sql = format!("{scope} TIME ZONE 'UTC'");
    if let Some(schema) = &server.schema {
        sql.push_str(&format!(
            "; {scope} search_path TO {}",
            Dialect::Postgres.quote(schema)
        ));
    }
    if let Some(timeout) = server.socket_timeout {
        sql.push_str(&format!(
            "; {scope} statement_timeout = {}",
            timeout.as_millis()
        ));
    }
    sql
}

/// A PostgreSQL connection of the pool. With `pgbouncer=true` it keeps nothing in the
/// session: each statement outside a transaction runs in one of its own, and every
/// transaction starts with the session settings as `SET LOCAL`.
pub(super) struct PgConn {
    conn: PgConnection,
    pooled: Option<PooledSession>,
    /// Shared by the pool: set once a statement showed a transaction pooler without
    /// `pgbouncer=true` (`error::is_pooler_misuse`); every later statement then fails
    /// with that error instead of running a cached statement that may not be its own.
    pooler_misuse: Arc<Mutex<Option<KavachError>>>,
    /// The highest WAL position this connection's server reported (replicas).
    wal_seen: u64,
}

struct PooledSession {
    /// `SET LOCAL ...`, sent with each `BEGIN` in the same round trip.
    settings: String,
    in_transaction: bool,
}

impl PgConn {
    fn new(
        conn: PgConnection,
        server: &Server,
        pooler_misuse: Arc<Mutex<Option<KavachError>>>,
    ) -> Self {
        let pooled = server.pgbouncer.then(|| PooledSession {
            settings: session_sql(server, "SET LOCAL"),
            in_transaction: false,
        });
        PgConn {
            conn,
            pooled,
            pooler_misuse,
            wal_seen: 0,
        }
    }

    fn check_pooler(&self) -> Result<()> {
        match &*self.pooler_misuse.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn note_pooler<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result {
            if is_pooler_misuse(err) {
                *self.pooler_misuse.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.clone());
            }
        }
        result
    }

    /// Outside a transaction behind PgBouncer, a statement goes in one of its own: this
    /// begins it (and says so), [`Self::end_own`] ends it.
    async fn begin_own(&mut self) -> Result<bool> {
        let own = matches!(&self.pooled, Some(p) if !p.in_transaction);
        if own {
            self.raw("BEGIN").await?;
        }
        Ok(own)
    }

    async fn end_own<T>(&mut self, own: bool, result: Result<T>) -> Result<T> {
        if !own {
            return result;
        }
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match self.raw(end).await {
            Ok(()) => result,
            Err(err) => result.and(Err(err)),
        }
    }

    /// Named (cached) prepared statements, except behind PgBouncer.
    fn persistent(&self, sql: &str) -> bool {
        self.pooled.is_none() && !planned_per_call(sql)
    }
}

pub(super) struct Driver;

impl super::Driver for Driver {
    type Conn = PgConn;

    async fn connect(server: &Server, migrate: bool) -> Result<(Pool<PgConn>, Vec<String>)> {
        connect(server, migrate).await
    }

    async fn probe(server: &Server) -> std::result::Result<(), sqlx::Error> {
        probe(server).await
    }

    async fn wal_position(conn: &mut PgConn, cached: bool) -> Result<u64> {
        if cached {
            return Ok(conn.wal_seen);
        }
        let own = conn.begin_own().await?;
        let position = sqlx::query_scalar::<_, i64>(
            "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8",
        )
        .persistent(false)
        .fetch_one(&mut conn.conn)
        .await
        .map_err(|e| map_sqlx_error(e, None));
        let position = conn.end_own(own, position).await?;
        conn.wal_seen = conn.wal_seen.max(position.max(0) as u64);
        Ok(conn.wal_seen)
    }
}

/// Also returns the tables it created.
async fn connect(server: &Server, migrate: bool) -> Result<(Pool<PgConn>, Vec<String>)> {
    let options = connect_options(server)?;
    let session = session_sql(server, "SET");
    let for_pool = server.clone();
    let pooler_misuse = Arc::new(Mutex::new(None));
    let pool = Pool::new(
        server.connection_limit.unwrap_or(default_pool_size()),
        server.pool_timeout.max(server.connect_timeout),
        move || {
            let (options, session, server) = (options.clone(), session.clone(), for_pool.clone());
            let pooler_misuse = Arc::clone(&pooler_misuse);
            async move {
                let mut conn = PgConnection::connect_with(&options).await?;
                if !server.pgbouncer {
                    Executor::execute(&mut conn, session.as_str()).await?;
                }
                Ok(PgConn::new(conn, &server, pooler_misuse))
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

/// Creates missing tables, in one transaction; an advisory lock makes concurrent starts
/// safe. (Its statements are unnamed: they run once.)
async fn create_missing_tables(conn: &mut PgConn, schema: Option<&str>) -> Result<Vec<String>> {
    conn.raw("BEGIN").await?;
    let created = create_in_transaction(&mut conn.conn, schema).await;
    conn.end_own(true, created).await
}

async fn create_in_transaction(
    conn: &mut PgConnection,
    schema: Option<&str>,
) -> Result<Vec<String>> {
    let fail = |e| map_sqlx_error(e, None);
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    if let Some(schema) = schema {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            Dialect::Postgres.quote(schema)
        );
        Executor::execute(&mut *conn, sql.as_str())
            .await
            .map_err(fail)?;
    }
    let existing: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .persistent(false)
    .fetch_all(&mut *conn)
    .await
    .map_err(fail)?;
    let change = schema_change(&existing, Dialect::Postgres);
    for ddl in &change.statements {
        Executor::execute(&mut *conn, ddl.as_str())
            .await
            .map_err(fail)?;
    }
    Ok(change.tables)
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
    persistent: bool,
) -> std::result::Result<sqlx::query::Query<'_, Postgres, PgArguments>, sqlx::Error> {
    let mut query = sqlx::query(&statement.sql).persistent(persistent);
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

impl Queryable for PgConn {
    async fn query(&mut self, statement: &Statement, model: &'static Model) -> Result<Vec<Record>> {
        let map = |e| map_sqlx_error(e, Some(&ErrorContext { model }));
        let persistent = self.persistent(&statement.sql);
        self.check_pooler()?;
        let own = self.begin_own().await?;
        let rows = match query(statement, persistent) {
            Ok(query) => query.fetch_all(&mut self.conn).await.map_err(map),
            Err(e) => Err(map(e)),
        };
        let rows = self.note_pooler(rows);
        let rows = self.end_own(own, rows).await?;
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
        let persistent = self.persistent(&statement.sql);
        self.check_pooler()?;
        let own = self.begin_own().await?;
        let affected = match query(statement, persistent) {
            Ok(query) => query.execute(&mut self.conn).await.map_err(map),
            Err(e) => Err(map(e)),
        };
        let affected = self.note_pooler(affected);
        let affected = self.end_own(own, affected).await?;
        Ok(affected.rows_affected())
    }
}

impl Connection for PgConn {
    /// Behind PgBouncer a `BEGIN` carries the session settings (one round trip).
    async fn raw(&mut self, sql: &str) -> Result<()> {
        let with_settings;
        let sql = match &mut self.pooled {
            Some(pooled) if sql.starts_with("BEGIN") => {
                pooled.in_transaction = true;
                with_settings = format!("{sql}; {}", pooled.settings);
                with_settings.as_str()
            }
            Some(pooled) => {
                if matches!(sql, "COMMIT" | "ROLLBACK") {
                    pooled.in_transaction = false;
                }
                sql
            }
            None => sql,
        };
        Executor::execute(&mut self.conn, sql)
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
