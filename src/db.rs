//! Running plans on SQLite: one writer connection (every write and every transaction,
//! so writers queue in-process instead of failing on locks), a read pool for file
//! databases, lazy connection and schema creation, and interactive transactions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous, SqliteValueRef,
};
use sqlx::{Connection, Decode, Executor, Row, TypeInfo, ValueRef};
use tokio::sync::{Mutex, OnceCell, OwnedMutexGuard};

use crate::config::{Config, Target};
use crate::dialect::Dialect;
use crate::error::{map_sqlx_error, ErrorContext, KavachError, Result};
use crate::methods::{Method, Returns};
use crate::plan::{plan, Expect, Plan};
use crate::schema::{Field, Model, ScalarType, SCHEMA};
use crate::value::{format_iso_millis, parse_stored_date, JsValue, Value};

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
}

type Writer = Arc<Mutex<Option<SqliteConnection>>>;

struct Backend {
    writer: Writer,
    readers: Option<SqlitePool>,
}

pub struct Adapter {
    config: Config,
    backend: OnceCell<Backend>,
    closed: AtomicBool,
}

fn closed_error() -> KavachError {
    KavachError::database("This adapter was closed with close(); create a new one with createAdapter().")
}

impl Adapter {
    pub fn new(config: Config) -> Self {
        Adapter {
            config,
            backend: OnceCell::new(),
            closed: AtomicBool::new(false),
        }
    }

    async fn backend(&self) -> Result<&Backend> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        self.backend.get_or_try_init(|| self.connect()).await
    }

    fn connect_options(&self) -> SqliteConnectOptions {
        let base = match &self.config.target {
            Target::Memory => SqliteConnectOptions::new(),
            Target::File(path) => SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal),
        };
        base.foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(self.config.busy_timeout)
    }

    async fn connect(&self) -> Result<Backend> {
        let options = self.connect_options();
        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| self.open_error(e))?;
        if !self.config.skip_migrations {
            create_missing_tables(&mut writer, Dialect::Sqlite).await?;
        }
        let readers = match self.config.target {
            Target::Memory => None,
            Target::File(_) => Some(
                SqlitePoolOptions::new()
                    .max_connections(self.config.read_connections)
                    .min_connections(0)
                    .test_before_acquire(false)
                    .connect_lazy_with(options.read_only(true)),
            ),
        };
        Ok(Backend {
            writer: Arc::new(Mutex::new(Some(writer))),
            readers,
        })
    }

    fn open_error(&self, err: sqlx::Error) -> KavachError {
        let place = match &self.config.target {
            Target::Memory => "an in-memory database".to_string(),
            Target::File(path) => format!("the SQLite database file {}", path.display()),
        };
        KavachError::connection("P1003", format!("Cannot open {place}: {err}"))
    }

    /// Runs one method outside any transaction.
    pub async fn call(&self, method: &'static Method, args: Vec<JsValue>) -> Result<Outcome> {
        let plan = plan(method, &args, Dialect::Sqlite)?;
        let backend = self.backend().await?;
        match (&backend.readers, plan.writes) {
            (Some(readers), false) => {
                let mut conn = readers.acquire().await.map_err(|e| map_sqlx_error(e, None))?;
                run_plan(&mut conn, &plan).await
            }
            _ => {
                let mut guard = backend.writer.lock().await;
                let conn = guard.as_mut().ok_or_else(closed_error)?;
                run_plan(conn, &plan).await
            }
        }
    }

    /// Closes every connection; later calls fail with a clear error.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(backend) = self.backend.get() {
            if let Some(readers) = &backend.readers {
                readers.close().await;
            }
            let conn = backend.writer.lock().await.take();
            if let Some(conn) = conn {
                let _ = conn.close().await;
            }
        }
    }

    /// Starts an interactive transaction: waits at most `max_wait` for the writer
    /// connection, then `BEGIN IMMEDIATE`. It rolls back by itself after `timeout`.
    pub async fn begin(&self, timeout: Duration, max_wait: Duration) -> Result<Arc<Transaction>> {
        let backend = self.backend().await?;
        let mut guard = tokio::time::timeout(max_wait, backend.writer.clone().lock_owned())
            .await
            .map_err(|_| {
                KavachError::transaction(format!(
                    "Unable to start a transaction in the given time (maxWait {} ms): another transaction holds the connection.",
                    max_wait.as_millis()
                ))
            })?;
        let conn = guard.as_mut().ok_or_else(closed_error)?;
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map_sqlx_error(e, None))?;
        let tx = Arc::new(Transaction {
            state: Mutex::new(TxState::Open(guard)),
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

enum TxState {
    Open(OwnedMutexGuard<Option<SqliteConnection>>),
    Committed,
    RolledBack,
    Expired { elapsed: Duration },
}

pub struct Transaction {
    state: Mutex<TxState>,
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
        let plan = plan(method, &args, Dialect::Sqlite)?;
        let mut state = self.state.lock().await;
        match &mut *state {
            TxState::Open(guard) => {
                let conn = guard.as_mut().ok_or_else(closed_error)?;
                run_plan(conn, &plan).await
            }
            closed => Err(self.closed(closed, "query")),
        }
    }

    fn stop_expiry(&self) {
        if let Some(handle) = self.expiry.lock().expect("expiry lock").take() {
            handle.abort();
        }
    }

    pub async fn commit(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        let TxState::Open(guard) = &mut *state else {
            return Err(self.closed(&state, "commit"));
        };
        self.stop_expiry();
        let conn = guard.as_mut().ok_or_else(closed_error)?;
        let result = conn.execute("COMMIT").await;
        if let Err(err) = result {
            // A COMMIT refused (e.g. SQLITE_BUSY) leaves the transaction open.
            let _ = conn.execute("ROLLBACK").await;
            *state = TxState::RolledBack;
            return Err(map_sqlx_error(err, None));
        }
        *state = TxState::Committed;
        Ok(())
    }

    pub async fn rollback(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        if let TxState::Open(guard) = &mut *state {
            self.stop_expiry();
            if let Some(conn) = guard.as_mut() {
                conn.execute("ROLLBACK")
                    .await
                    .map_err(|e| map_sqlx_error(e, None))?;
            }
            *state = TxState::RolledBack;
        }
        Ok(())
    }

    async fn expire(&self) {
        let mut state = self.state.lock().await;
        if let TxState::Open(guard) = &mut *state {
            if let Some(conn) = guard.as_mut() {
                let _ = conn.execute("ROLLBACK").await;
            }
            *state = TxState::Expired {
                elapsed: self.started.elapsed(),
            };
        }
    }
}

/// Creates the tables of every model that has none yet, with their indexes, in one
/// `BEGIN IMMEDIATE` transaction so two processes starting at once do not collide.
/// Existing tables are left exactly as they are.
async fn create_missing_tables(conn: &mut SqliteConnection, dialect: Dialect) -> Result<()> {
    let fail = |e| map_sqlx_error(e, None);
    conn.execute("BEGIN IMMEDIATE").await.map_err(fail)?;
    let result: Result<()> = async {
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut *conn)
                .await
                .map_err(fail)?;
        for model in &SCHEMA.models {
            if existing.iter().any(|t| t == &model.table) {
                continue;
            }
            for ddl in dialect.create_table(model) {
                conn.execute(ddl.as_str()).await.map_err(fail)?;
            }
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute(end).await.map_err(fail)?;
    result
}

fn bind_value<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    value: &Value,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match value {
        Value::Null => query.bind(None::<String>),
        Value::Bool(b) => query.bind(i64::from(*b)),
        Value::Int(i) => query.bind(*i),
        Value::Text(s) | Value::JsonText(s) => query.bind(s.clone()),
        Value::DateTime(ms) => query.bind(format_iso_millis(*ms)),
        Value::Json(json) => query.bind(json.to_string()),
    }
}

async fn run_plan(conn: &mut SqliteConnection, plan: &Plan) -> Result<Outcome> {
    let ctx = ErrorContext { model: plan.model };
    let mut query = sqlx::query(&plan.statement.sql);
    for value in &plan.statement.params {
        query = bind_value(query, value);
    }
    let model = plan.model;
    match plan.expect {
        Expect::Affected { returns } => {
            let done = query
                .execute(&mut *conn)
                .await
                .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
            Ok(match returns {
                Returns::Count => Outcome::Count(done.rows_affected()),
                _ => Outcome::Nothing,
            })
        }
        Expect::AffectedOne { operation } => {
            let done = query
                .execute(&mut *conn)
                .await
                .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
            if done.rows_affected() == 0 {
                return Err(KavachError::record_not_found(&model.name, operation));
            }
            Ok(Outcome::Nothing)
        }
        Expect::Optional | Expect::One { .. } => {
            let row = query
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
            match (row, plan.expect) {
                (Some(row), Expect::One { returns: Returns::Nothing, .. }) => {
                    drop(row);
                    Ok(Outcome::Nothing)
                }
                (Some(row), _) => Ok(Outcome::Record(decode_row(model, &row)?)),
                (None, Expect::One { operation, .. }) => {
                    Err(KavachError::record_not_found(&model.name, operation))
                }
                (None, _) => Ok(Outcome::Null),
            }
        }
        Expect::Many => {
            let rows = query
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| map_sqlx_error(e, Some(&ctx)))?;
            let records = rows
                .iter()
                .map(|row| decode_row(model, row))
                .collect::<Result<Vec<_>>>()?;
            Ok(Outcome::Records(records))
        }
    }
}

fn decode_row(model: &'static Model, row: &sqlx::sqlite::SqliteRow) -> Result<Record> {
    let mut cells = Vec::with_capacity(model.fields.len());
    for (i, field) in model.fields.iter().enumerate() {
        let raw = row
            .try_get_raw(i)
            .map_err(|e| KavachError::database(format!("Cannot read {}.{}: {e}", model.name, field.name)))?;
        cells.push(decode_cell(model, field, raw)?);
    }
    Ok(Record { model, cells })
}

fn decode_cell(model: &Model, field: &Field, raw: SqliteValueRef<'_>) -> Result<Value> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    let bad = |what: String| {
        KavachError::database(format!(
            "Cannot read {}.{} (column {}) as {}: {what}",
            model.name,
            field.name,
            field.column,
            field.ty.prisma_name()
        ))
    };
    let text = |raw| <String as Decode<sqlx::Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()));
    let int = |raw| <i64 as Decode<sqlx::Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()));
    Ok(match field.ty {
        ScalarType::String => Value::Text(text(raw)?),
        ScalarType::Int => Value::Int(int(raw)?),
        ScalarType::Boolean => Value::Bool(int(raw)? != 0),
        ScalarType::DateTime => match storage.as_str() {
            "INTEGER" => Value::DateTime(int(raw)?),
            "REAL" => {
                let ms = <f64 as Decode<sqlx::Sqlite>>::decode(raw).map_err(|e| bad(e.to_string()))?;
                Value::DateTime(ms as i64)
            }
            _ => {
                let s = text(raw)?;
                Value::DateTime(parse_stored_date(&s).ok_or_else(|| bad(format!("'{s}' is not a date")))?)
            }
        },
        ScalarType::Json => {
            let s = text(raw)?;
            Value::Json(serde_json::from_str(&s).map_err(|e| bad(format!("invalid JSON ({e})")))?)
        }
    })
}
