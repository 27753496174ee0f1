//! Running plans: connections per provider (`sqlite.rs`, `postgres.rs`, `mysql.rs`, each
//! with the same parts: connect, bind, decode, schema creation), lazy connection and
//! schema creation on first use, retries on lost connections, and interactive
//! transactions. Everything here is provider-neutral.

mod mysql;
mod pool;
mod postgres;
mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use pool::{Pool, Pooled};
use tokio::sync::{Mutex, OnceCell, OwnedMutexGuard};

use crate::config::{Config, Server, Target};
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, ErrorContext, ErrorKind, KavachError, Result};
use crate::methods::{Method, Returns};
use crate::plan::{plan, Expect, Plan, Statement};
use crate::schema::Model;
use crate::value::{JsValue, Value};

/// A decoded row of a model.
#[derive(Debug, Clone)]
pub struct Record {
    pub model: &'static Model,
    pub cells: Vec<Value>,
}

/// What a method call resolves with.
#[derive(Debug)]
pub enum Outcome {
    Nothing,
    Null,
    Count(u64),
    Record(Record),
    Records(Vec<Record>),
    Strings(Vec<String>),
}

type SqliteWriter = Arc<Mutex<Option<SqliteConnection>>>;

enum Backend {
    /// One writer connection (every write and transaction queue on it, so writers in
    /// this process never fight over SQLite's lock) and, for files, a read pool.
    Sqlite {
        writer: SqliteWriter,
        readers: Option<Pool<SqliteConnection>>,
        formats: Arc<sqlite::DateFormats>,
    },
    Postgres(Pool<PgConnection>, Server),
    Mysql(Pool<MySqlConnection>, Server),
}

/// A connection held for one call or one transaction.
enum Lease {
    SqliteWriter(
        OwnedMutexGuard<Option<SqliteConnection>>,
        Arc<sqlite::DateFormats>,
    ),
    SqliteReader(Pooled<SqliteConnection>, Arc<sqlite::DateFormats>),
    Postgres(Pooled<PgConnection>),
    Mysql(Pooled<MySqlConnection>),
}

/// A connection of any provider, for running statements.
enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection, &'a sqlite::DateFormats),
    Postgres(&'a mut PgConnection),
    Mysql(&'a mut MySqlConnection),
}

impl Lease {
    fn conn(&mut self) -> Result<Conn<'_>> {
        Ok(match self {
            Lease::SqliteWriter(guard, formats) => {
                Conn::Sqlite(guard.as_mut().ok_or_else(closed_error)?, formats)
            }
            Lease::SqliteReader(conn, formats) => Conn::Sqlite(conn, formats),
            Lease::Postgres(conn) => Conn::Postgres(conn),
            Lease::Mysql(conn) => Conn::Mysql(conn),
        })
    }

    /// Keeps a broken connection out of the pool.
    fn discard(&mut self) {
        match self {
            Lease::Postgres(conn) => conn.discard(),
            Lease::Mysql(conn) => conn.discard(),
            Lease::SqliteReader(conn, _) => conn.discard(),
            Lease::SqliteWriter(..) => {}
        }
    }
}

impl Conn<'_> {
    async fn execute(
        &mut self,
        statement: &Statement,
        model: &Model,
    ) -> std::result::Result<u64, sqlx::Error> {
        match self {
            Conn::Sqlite(c, formats) => sqlite::execute(c, formats, statement, model).await,
            Conn::Postgres(c) => postgres::execute(c, statement).await,
            Conn::Mysql(c) => mysql::execute(c, statement).await,
        }
    }

    async fn fetch(&mut self, statement: &Statement, model: &'static Model) -> Result<Vec<Record>> {
        let ctx = ErrorContext { model };
        let map = |e| map_sqlx_error(e, Some(&ctx));
        match self {
            Conn::Sqlite(c, formats) => sqlite::fetch(c, formats, statement, model, map).await,
            Conn::Postgres(c) => postgres::fetch(c, statement, model, map).await,
            Conn::Mysql(c) => mysql::fetch(c, statement, model, map).await,
        }
    }

    /// Runs SQL text without parameters (transaction control).
    async fn raw(&mut self, sql: &str) -> Result<()> {
        use sqlx::Executor;
        let result = match self {
            Conn::Sqlite(c, _) => c.execute(sql).await.map(drop),
            Conn::Postgres(c) => c.execute(sql).await.map(drop),
            Conn::Mysql(c) => c.execute(sql).await.map(drop),
        };
        result.map_err(|e| map_sqlx_error(e, None))
    }
}

pub struct Adapter {
    config: Config,
    dialect: Dialect,
    /// The connections, and the tables the first connection created.
    backend: OnceCell<(Backend, Vec<String>)>,
    closed: AtomicBool,
}

fn closed_error() -> KavachError {
    KavachError::database(
        "This adapter was closed with close(); create a new one with createAdapter().",
    )
}

/// A lost connection: the call may be retried on another one.
fn is_connection_lost(err: &KavachError) -> bool {
    err.kind == ErrorKind::Known("P1017")
}

/// Errors after which the connection is known to be fine for the next call: anything
/// else (a lost connection, a failed COMMIT, an unknown server error) retires it.
fn leaves_connection_clean(err: &KavachError) -> bool {
    matches!(
        err.kind,
        ErrorKind::Validation | ErrorKind::Known("P2000" | "P2002" | "P2020" | "P2025")
    )
}

impl Adapter {
    pub fn new(config: Config) -> Self {
        let dialect = match config.target {
            Target::Memory | Target::File(_) => Dialect::Sqlite,
            Target::Postgres(_) => Dialect::Postgres,
            Target::Mysql(_) => Dialect::Mysql,
        };
        Adapter {
            config,
            dialect,
            backend: OnceCell::new(),
            closed: AtomicBool::new(false),
        }
    }

    async fn backend(&self) -> Result<&Backend> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        let (backend, _) = self.backend.get_or_try_init(|| self.connect()).await?;
        Ok(backend)
    }

    /// Connects (if not yet) and tells which tables this adapter created.
    pub async fn created_tables(&self) -> Result<Vec<String>> {
        self.backend().await?;
        Ok(self
            .backend
            .get()
            .map(|(_, created)| created.clone())
            .unwrap_or_default())
    }

    async fn connect(&self) -> Result<(Backend, Vec<String>)> {
        let migrate = !self.config.skip_migrations;
        Ok(match &self.config.target {
            Target::Memory | Target::File(_) => {
                let (writer, readers, formats, created) =
                    sqlite::connect(&self.config, migrate).await?;
                let writer = Arc::new(Mutex::new(Some(writer)));
                let formats = Arc::new(formats);
                (
                    Backend::Sqlite {
                        writer,
                        readers,
                        formats,
                    },
                    created,
                )
            }
            Target::Postgres(server) => {
                reachable(server, postgres::probe(server)).await?;
                let (pool, created) = postgres::connect(server, migrate).await?;
                (Backend::Postgres(pool, server.clone()), created)
            }
            Target::Mysql(server) => {
                reachable(server, mysql::probe(server)).await?;
                let (pool, created) = mysql::connect(server, migrate).await?;
                (Backend::Mysql(pool, server.clone()), created)
            }
        })
    }

    /// A connection for one call: the SQLite writer for writes (and for in-memory
    /// databases), otherwise one from a pool.
    async fn lease(&self, writes: bool) -> Result<Lease> {
        match self.backend().await? {
            Backend::Sqlite {
                writer,
                readers,
                formats,
            } => match (readers, writes) {
                (Some(readers), false) => Ok(Lease::SqliteReader(
                    readers
                        .acquire()
                        .await
                        .map_err(|e| map_sqlx_error(e, None))?,
                    Arc::clone(formats),
                )),
                _ => Ok(Lease::SqliteWriter(
                    writer.clone().lock_owned().await,
                    Arc::clone(formats),
                )),
            },
            // An empty pool must connect first: a server that refuses is reported at
            // once (the pool itself would retry until pool_timeout).
            Backend::Postgres(pool, server) => {
                if pool.open() == 0 {
                    reachable(server, postgres::probe(server)).await?;
                }
                match pool.acquire().await {
                    Ok(conn) => Ok(Lease::Postgres(conn)),
                    Err(e) => Err(acquire_error(e, server, postgres::probe(server)).await),
                }
            }
            Backend::Mysql(pool, server) => {
                if pool.open() == 0 {
                    reachable(server, mysql::probe(server)).await?;
                }
                match pool.acquire().await {
                    Ok(conn) => Ok(Lease::Mysql(conn)),
                    Err(e) => Err(acquire_error(e, server, mysql::probe(server)).await),
                }
            }
        }
    }

    fn max_attempts(&self) -> usize {
        match &self.config.target {
            Target::Postgres(s) | Target::Mysql(s) => s.connection_limit.unwrap_or(5) as usize + 1,
            _ => 1,
        }
    }

    /// Runs one method outside any transaction. A call that finds its pooled connection
    /// dead (server restart, terminated backend) runs again on a fresh one.
    pub async fn call(&self, method: &'static Method, args: Vec<JsValue>) -> Result<Outcome> {
        let plan = plan(method, &args, self.dialect)?;
        let mut attempt = 1;
        loop {
            let mut lease = self.lease(plan.writes).await?;
            match run_atomically(&mut lease.conn()?, &plan).await {
                Err(err) if is_connection_lost(&err) && attempt < self.max_attempts() => {
                    lease.discard();
                    attempt += 1;
                }
                Err(err) => {
                    if !leaves_connection_clean(&err) {
                        lease.discard();
                    }
                    return Err(err);
                }
                ok => return ok,
            }
        }
    }

    /// Closes every connection; later calls fail with a clear error.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        match self.backend.get().map(|(backend, _)| backend) {
            Some(Backend::Sqlite {
                writer, readers, ..
            }) => {
                if let Some(readers) = readers {
                    readers.close();
                }
                if let Some(conn) = writer.lock().await.take() {
                    use sqlx::Connection;
                    let _ = conn.close().await;
                }
            }
            Some(Backend::Postgres(pool, _)) => pool.close(),
            Some(Backend::Mysql(pool, _)) => pool.close(),
            None => {}
        }
    }

    /// Starts an interactive transaction: waits at most `max_wait` for a connection,
    /// then begins (SQLite: `BEGIN IMMEDIATE`). It rolls back by itself after `timeout`.
    pub async fn begin(
        &self,
        timeout: Duration,
        max_wait: Duration,
        isolation: Option<&str>,
    ) -> Result<Arc<Transaction>> {
        let begin_sql = begin_statements(self.dialect, isolation)?;
        let mut lease = tokio::time::timeout(max_wait, self.lease(true))
            .await
            .map_err(|_| {
                KavachError::transaction(format!(
                    "Unable to start a transaction in the given time (maxWait {} ms).",
                    max_wait.as_millis()
                ))
            })??;
        for sql in begin_sql {
            lease.conn()?.raw(sql).await?;
        }
        let tx = Arc::new(Transaction {
            state: Mutex::new(TxState::Open(lease)),
            dialect: self.dialect,
            started: Instant::now(),
            timeout,
            expiry: std::sync::Mutex::new(None),
        });
        let watcher = Arc::clone(&tx);
        let handle = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            watcher.expire().await;
        });
        *tx.expiry.lock().expect("expiry lock") = Some(handle.abort_handle());
        Ok(tx)
    }
}

/// The statements that open a transaction with an optional Prisma isolation level.
fn begin_statements(dialect: Dialect, isolation: Option<&str>) -> Result<Vec<&'static str>> {
    let level = match isolation {
        None => None,
        Some(name) => Some(match (dialect, name) {
            (Dialect::Sqlite, "Serializable") => "SERIALIZABLE",
            (Dialect::Postgres | Dialect::Mysql, "ReadUncommitted") => "READ UNCOMMITTED",
            (Dialect::Postgres | Dialect::Mysql, "ReadCommitted") => "READ COMMITTED",
            (Dialect::Postgres | Dialect::Mysql, "RepeatableRead") => "REPEATABLE READ",
            (Dialect::Postgres | Dialect::Mysql, "Serializable") => "SERIALIZABLE",
            (_, other) => {
                let allowed = match dialect {
                    Dialect::Sqlite => "Serializable",
                    _ => "ReadUncommitted, ReadCommitted, RepeatableRead, Serializable",
                };
                return Err(KavachError::validation(
                    "transaction",
                    format!(
                        "isolationLevel '{other}' is not available on {}; use one of: {allowed}",
                        dialect.provider()
                    ),
                ));
            }
        }),
    };
    Ok(match (dialect, level) {
        (Dialect::Sqlite, _) => vec!["BEGIN IMMEDIATE"],
        (Dialect::Postgres, None) => vec!["BEGIN"],
        (Dialect::Postgres, Some("READ UNCOMMITTED")) => {
            vec!["BEGIN ISOLATION LEVEL READ UNCOMMITTED"]
        }
        (Dialect::Postgres, Some("READ COMMITTED")) => vec!["BEGIN ISOLATION LEVEL READ COMMITTED"],
        (Dialect::Postgres, Some("REPEATABLE READ")) => {
            vec!["BEGIN ISOLATION LEVEL REPEATABLE READ"]
        }
        (Dialect::Postgres, Some(_)) => vec!["BEGIN ISOLATION LEVEL SERIALIZABLE"],
        (Dialect::Mysql, None) => vec!["BEGIN"],
        (Dialect::Mysql, Some("READ UNCOMMITTED")) => {
            vec!["SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED", "BEGIN"]
        }
        (Dialect::Mysql, Some("READ COMMITTED")) => {
            vec!["SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "BEGIN"]
        }
        (Dialect::Mysql, Some("REPEATABLE READ")) => {
            vec!["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "BEGIN"]
        }
        (Dialect::Mysql, Some(_)) => vec!["SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN"],
    })
}

enum TxState {
    Open(Lease),
    Committed,
    RolledBack,
    Expired { elapsed: Duration },
}

pub struct Transaction {
    state: Mutex<TxState>,
    dialect: Dialect,
    started: Instant,
    timeout: Duration,
    expiry: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Transaction {
    fn closed(&self, state: &TxState, what: &str) -> KavachError {
        let detail = match state {
            TxState::Open(_) => unreachable!("only closed transactions are reported"),
            TxState::Committed => format!(
                "Transaction already closed: A {what} cannot be executed on a committed transaction."
            ),
            TxState::RolledBack => format!(
                "Transaction already closed: A {what} cannot be executed on a transaction that was rolled back."
            ),
            TxState::Expired { elapsed } => format!(
                "A {what} cannot be executed on an expired transaction. The timeout for this transaction was {} ms, however {} ms passed since the start of the transaction. Consider increasing the interactive transaction timeout or doing less work in the transaction.",
                self.timeout.as_millis(),
                elapsed.as_millis()
            ),
        };
        KavachError::transaction(detail)
    }

    pub async fn call(&self, method: &'static Method, args: Vec<JsValue>) -> Result<Outcome> {
        let plan = plan(method, &args, self.dialect)?;
        let mut state = self.state.lock().await;
        match &mut *state {
            TxState::Open(lease) => run_plan(&mut lease.conn()?, &plan).await,
            closed => Err(self.closed(closed, "query")),
        }
    }

    fn stop_expiry(&self) {
        if let Some(handle) = self.expiry.lock().expect("expiry lock").take() {
            handle.abort();
        }
    }

    /// Ends the transaction, releasing its connection.
    async fn finish(&self, sql: &str) -> Result<()> {
        let mut state = self.state.lock().await;
        let TxState::Open(lease) = &mut *state else {
            return match sql {
                "ROLLBACK" => Ok(()),
                _ => Err(self.closed(&state, "commit")),
            };
        };
        self.stop_expiry();
        let mut conn = lease.conn()?;
        let result = conn.raw(sql).await;
        if result.is_err() && sql == "COMMIT" {
            // A refused COMMIT (e.g. SQLITE_BUSY) leaves the transaction open.
            let _ = conn.raw("ROLLBACK").await;
        }
        if result.is_err() {
            lease.discard();
        }
        *state = match (sql, &result) {
            ("COMMIT", Ok(())) => TxState::Committed,
            _ => TxState::RolledBack,
        };
        result
    }

    pub async fn commit(&self) -> Result<()> {
        self.finish("COMMIT").await
    }

    pub async fn rollback(&self) -> Result<()> {
        self.finish("ROLLBACK").await
    }

    async fn expire(&self) {
        let mut state = self.state.lock().await;
        if let TxState::Open(lease) = &mut *state {
            if let Ok(mut conn) = lease.conn() {
                if conn.raw("ROLLBACK").await.is_err() {
                    lease.discard();
                }
            }
            *state = TxState::Expired {
                elapsed: self.started.elapsed(),
            };
        }
    }
}

/// Outside a transaction, a write followed by its read-back (MySQL has no RETURNING)
/// runs in its own transaction: the write's row lock keeps others out until the row is
/// read, so the caller sees exactly what its write produced.
async fn run_atomically(conn: &mut Conn<'_>, plan: &Plan) -> Result<Outcome> {
    if plan.before.is_none() {
        return run_plan(conn, plan).await;
    }
    conn.raw("BEGIN").await?;
    let result = run_plan(conn, plan).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    match conn.raw(end).await {
        Ok(()) => result,
        Err(err) => result.and(Err(err)),
    }
}

async fn run_plan(conn: &mut Conn<'_>, plan: &Plan) -> Result<Outcome> {
    let model = plan.model;
    let ctx = ErrorContext { model };
    if let Some(write) = &plan.before {
        let affected = conn
            .execute(write, model)
            .await
            .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
        if let (Expect::AfterWrite { missing }, 0) = (plan.expect, affected) {
            return match missing {
                Some(operation) => Err(KavachError::record_not_found(&model.name, operation)),
                None => Ok(Outcome::Null),
            };
        }
    }
    match plan.expect {
        Expect::Affected { returns } => {
            let affected = conn
                .execute(&plan.statement, model)
                .await
                .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
            Ok(match returns {
                Returns::Count => Outcome::Count(affected),
                _ => Outcome::Nothing,
            })
        }
        Expect::AffectedOne { operation } => {
            let affected = conn
                .execute(&plan.statement, model)
                .await
                .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
            if affected == 0 {
                return Err(KavachError::record_not_found(&model.name, operation));
            }
            Ok(Outcome::Nothing)
        }
        Expect::Optional | Expect::One { .. } | Expect::AfterWrite { .. } => {
            let mut rows = conn.fetch(&plan.statement, model).await?;
            match (rows.is_empty(), plan.expect) {
                (
                    false,
                    Expect::One {
                        returns: Returns::Nothing,
                        ..
                    },
                ) => Ok(Outcome::Nothing),
                (false, _) => Ok(Outcome::Record(rows.swap_remove(0))),
                (true, Expect::One { operation, .. })
                | (
                    true,
                    Expect::AfterWrite {
                        missing: Some(operation),
                    },
                ) => Err(KavachError::record_not_found(&model.name, operation)),
                (true, _) => Ok(Outcome::Null),
            }
        }
        Expect::Many => Ok(Outcome::Records(conn.fetch(&plan.statement, model).await?)),
    }
}

/// What creating the missing tables takes: their names and the DDL statements.
struct SchemaChange {
    tables: Vec<String>,
    statements: Vec<String>,
}

/// The tables of the declared models that `existing` lacks, with their DDL; existing
/// tables are left exactly as they are.
fn schema_change(existing: &[String], dialect: Dialect) -> SchemaChange {
    let missing: Vec<&Model> = crate::schema::SCHEMA
        .models
        .iter()
        .filter(|m| !existing.contains(&m.table))
        .collect();
    SchemaChange {
        tables: missing.iter().map(|m| m.table.clone()).collect(),
        statements: missing
            .iter()
            .flat_map(|m| dialect.create_table(m))
            .collect(),
    }
}

/// Decodes a row of `model`: column `i` holds field `i` (plans select every field in
/// declaration order); `decode_cell` is the provider's conversion.
fn decode_row<R: sqlx::Row>(
    model: &'static Model,
    row: &R,
    decode_cell: impl for<'r> Fn(
        &Model,
        &crate::schema::Field,
        <R::Database as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Value>,
) -> Result<Record>
where
    usize: sqlx::ColumnIndex<R>,
{
    let cells = model
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let raw = row
                .try_get_raw(i)
                .map_err(|e| decode_error(model, field, e))?;
            decode_cell(model, field, raw)
        })
        .collect::<Result<_>>()?;
    Ok(Record { model, cells })
}

/// Can the server be reached? `probe` is one direct connection attempt, bounded by
/// `connect_timeout`; the error (P1001) names host and port, never the password.
async fn reachable(
    server: &Server,
    probe: impl std::future::Future<Output = std::result::Result<(), sqlx::Error>>,
) -> Result<()> {
    match tokio::time::timeout(server.connect_timeout, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(probe_error)) => Err(unreachable(server, &probe_error)),
        Err(_) => Err(KavachError::connection(
            "P1001",
            format!(
                "Can't reach database server at {}: no answer within connect_timeout",
                server.location()
            ),
        )),
    }
}

/// A pool that gave no connection in time is either exhausted (P2024) or cannot reach
/// the server at all (P1001): `probe` tells which.
async fn acquire_error(
    err: sqlx::Error,
    server: &Server,
    probe: impl std::future::Future<Output = std::result::Result<(), sqlx::Error>>,
) -> KavachError {
    if !matches!(err, sqlx::Error::PoolTimedOut) {
        return unreachable(server, &err);
    }
    match reachable(server, probe).await {
        Ok(()) => map_sqlx_error(err, None),
        Err(unreachable) => unreachable,
    }
}

fn unreachable(server: &Server, err: &sqlx::Error) -> KavachError {
    let reason = match err {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    KavachError::connection(
        "P1001",
        format!(
            "Can't reach database server at {} ({reason})",
            server.location()
        ),
    )
}

/// The error a decode of column `field` of `model` raises when the stored value does not
/// fit the declared type.
fn decode_error(
    model: &Model,
    field: &crate::schema::Field,
    what: impl std::fmt::Display,
) -> KavachError {
    KavachError::database(format!(
        "Cannot read {}.{} (column {}) as {}: {what}",
        model.name,
        field.name,
        field.column,
        field.ty.prisma_name()
    ))
}
