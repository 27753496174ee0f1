//! Running plans: connections per provider (`sqlite.rs` with its executor threads,
//! `postgres.rs`, `mysql.rs`, each with the same parts: connect, bind, decode, schema
//! creation), lazy connection and schema creation on first use, retries on lost
//! connections, and interactive transactions. Everything here is provider-neutral.

mod mysql;
mod pool;
mod postgres;
mod sqlite;
mod sqlite_conn;
mod sqlite_executor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;

use pool::{Pool, Pooled};
use sqlite_conn::RawConnection;
use sqlite_executor::{Executor, Work};
use tokio::sync::{Mutex, OnceCell};

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

/// Where a call's result goes: a JS promise, or a task awaiting it.
pub trait Deliver: Send {
    /// Hands the result over; false when nobody takes it any more.
    fn deliver(self: Box<Self>, result: Result<Outcome>) -> bool;

    /// Has the receiver stopped waiting?
    fn abandoned(&self) -> bool {
        false
    }
}

pub type Reply = Box<dyn Deliver>;

/// A reply nobody waits for.
struct Unanswered;

impl Deliver for Unanswered {
    fn deliver(self: Box<Self>, _result: Result<Outcome>) -> bool {
        true
    }
}

/// The tokio runtime every adapter shares. Workers: `KAVACH_NATIVE_WORKERS`, else one
/// per core.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        let workers = std::env::var("KAVACH_NATIVE_WORKERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("kavach-tokio")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    });
    &RUNTIME
}

enum Backend {
    /// A writer thread (every write and transaction queue on it, so writers in this
    /// process never fight over SQLite's lock) and, for files, reader threads.
    Sqlite(Executor),
    Postgres(Pool<PgConnection>, Server),
    Mysql(Pool<MySqlConnection>, Server),
}

/// A pooled server connection, held for one call or one transaction.
enum ServerLease {
    Postgres(Pooled<PgConnection>),
    Mysql(Pooled<MySqlConnection>),
}

/// What a transaction runs on: its place on the SQLite writer, or a server connection.
enum Lease {
    Sqlite { executor: Executor, tx: u64 },
    Server(ServerLease),
}

/// A connection of any provider, for running statements.
enum Conn<'a> {
    Sqlite(&'a mut RawConnection),
    Postgres(&'a mut PgConnection),
    Mysql(&'a mut MySqlConnection),
}

impl ServerLease {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            ServerLease::Postgres(conn) => Conn::Postgres(conn),
            ServerLease::Mysql(conn) => Conn::Mysql(conn),
        }
    }

    /// Keeps a broken connection out of the pool.
    fn discard(&mut self) {
        match self {
            ServerLease::Postgres(conn) => conn.discard(),
            ServerLease::Mysql(conn) => conn.discard(),
        }
    }
}

impl Lease {
    async fn run(&mut self, plan: Plan) -> Result<Outcome> {
        match self {
            Lease::Sqlite { executor, tx } => executor.run_in(*tx, plan).await,
            Lease::Server(server) => run_plan(&mut server.conn(), &plan).await,
        }
    }

    /// Transaction control: BEGIN (servers), COMMIT, ROLLBACK.
    async fn raw(&mut self, sql: &'static str) -> Result<()> {
        match self {
            Lease::Sqlite { executor, tx } => executor.end(*tx, sql).await,
            Lease::Server(server) => server.conn().raw(sql).await,
        }
    }

    fn discard(&mut self) {
        if let Lease::Server(server) = self {
            server.discard();
        }
    }
}

impl Conn<'_> {
    async fn execute(&mut self, statement: &Statement, model: &'static Model) -> Result<u64> {
        let ctx = ErrorContext { model };
        let map = |e| map_sqlx_error(e, Some(&ctx));
        match self {
            Conn::Sqlite(c) => c.execute(statement, model),
            Conn::Postgres(c) => postgres::execute(c, statement).await.map_err(map),
            Conn::Mysql(c) => mysql::execute(c, statement).await.map_err(map),
        }
    }

    async fn fetch(&mut self, statement: &Statement, model: &'static Model) -> Result<Vec<Record>> {
        let ctx = ErrorContext { model };
        let map = |e| map_sqlx_error(e, Some(&ctx));
        match self {
            Conn::Sqlite(c) => c.fetch(statement, model),
            Conn::Postgres(c) => postgres::fetch(c, statement, model, map).await,
            Conn::Mysql(c) => mysql::fetch(c, statement, model, map).await,
        }
    }

    /// Runs SQL text without parameters (transaction control).
    async fn raw(&mut self, sql: &str) -> Result<()> {
        use sqlx::Executor;
        let result = match self {
            Conn::Sqlite(c) => return c.raw(sql),
            Conn::Postgres(c) => c.execute(sql).await.map(drop),
            Conn::Mysql(c) => c.execute(sql).await.map(drop),
        };
        result.map_err(|e| map_sqlx_error(e, None))
    }
}

/// A call waiting for its adapter to connect.
type EarlyCall = (&'static Method, Vec<JsValue>, Reply);

pub struct Adapter {
    config: Config,
    dialect: Dialect,
    /// The connections, and the tables the first connection created.
    backend: OnceCell<(Backend, Vec<String>)>,
    /// SQLite calls made before the connection was up, kept in the order they were made
    /// so that they reach the executor in that order.
    early_calls: std::sync::Mutex<Vec<EarlyCall>>,
    /// SQLite is connected and every early call went to the executor.
    flushed: AtomicBool,
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
            early_calls: std::sync::Mutex::new(Vec::new()),
            flushed: AtomicBool::new(false),
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
                let (executor, created) = sqlite::connect(&self.config, migrate).await?;
                (Backend::Sqlite(executor), created)
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

    /// A pooled connection of a server backend. An empty pool must connect first: a
    /// server that refuses is reported at once (the pool itself would retry until
    /// pool_timeout).
    async fn server_lease(&self, backend: &Backend) -> Result<ServerLease> {
        match backend {
            Backend::Postgres(pool, server) => {
                if pool.open() == 0 {
                    reachable(server, postgres::probe(server)).await?;
                }
                match pool.acquire().await {
                    Ok(conn) => Ok(ServerLease::Postgres(conn)),
                    Err(e) => Err(acquire_error(e, server, postgres::probe(server)).await),
                }
            }
            Backend::Mysql(pool, server) => {
                if pool.open() == 0 {
                    reachable(server, mysql::probe(server)).await?;
                }
                match pool.acquire().await {
                    Ok(conn) => Ok(ServerLease::Mysql(conn)),
                    Err(e) => Err(acquire_error(e, server, mysql::probe(server)).await),
                }
            }
            Backend::Sqlite(_) => unreachable!("SQLite runs on its executor threads"),
        }
    }

    fn max_attempts(&self) -> usize {
        match &self.config.target {
            Target::Postgres(s) | Target::Mysql(s) => s.connection_limit.unwrap_or(5) as usize + 1,
            _ => 1,
        }
    }

    /// Starts one method call from the JS thread. On SQLite it goes straight to an
    /// executor thread (queued in call order until the first connection is up); on a
    /// server it runs as a task on the runtime.
    pub fn dispatch(self: &Arc<Self>, method: &'static Method, args: Vec<JsValue>, reply: Reply) {
        if self.closed.load(Ordering::Acquire) {
            reply.deliver(Err(closed_error()));
            return;
        }
        if self.dialect != Dialect::Sqlite {
            let adapter = Arc::clone(self);
            runtime().spawn(async move {
                reply.deliver(adapter.call(method, args).await);
            });
            return;
        }
        if self.flushed.load(Ordering::Acquire) {
            if let Some((Backend::Sqlite(executor), _)) = self.backend.get() {
                executor.send(Work::Call(method, args), None, reply);
                return;
            }
        }
        let mut early = self.early_calls.lock().unwrap_or_else(|e| e.into_inner());
        if self.flushed.load(Ordering::Acquire) {
            drop(early);
            return self.dispatch(method, args, reply);
        }
        early.push((method, args, reply));
        if early.len() == 1 {
            let adapter = Arc::clone(self);
            runtime().spawn(async move { adapter.flush_early_calls().await });
        }
    }

    /// Connects, then hands the calls made meanwhile to the executor in order (or
    /// answers each with the connection error).
    async fn flush_early_calls(&self) {
        let connected = self.backend().await.map(drop);
        let mut early = self.early_calls.lock().unwrap_or_else(|e| e.into_inner());
        let calls = std::mem::take(&mut *early);
        match (connected, self.backend.get()) {
            (Ok(()), Some((Backend::Sqlite(executor), _))) => {
                for (method, args, reply) in calls {
                    executor.send(Work::Call(method, args), None, reply);
                }
                self.flushed.store(true, Ordering::Release);
            }
            (Err(err), _) => {
                for (_, _, reply) in calls {
                    reply.deliver(Err(err.clone()));
                }
            }
            (Ok(()), _) => unreachable!("only SQLite adapters queue early calls"),
        }
    }

    /// Runs one method outside any transaction. A call that finds its pooled connection
    /// dead (server restart, terminated backend) runs again on a fresh one.
    pub async fn call(&self, method: &'static Method, args: Vec<JsValue>) -> Result<Outcome> {
        let plan = plan(method, &args, self.dialect)?;
        let backend = self.backend().await?;
        if let Backend::Sqlite(executor) = backend {
            return executor.run_plan(plan).await;
        }
        let mut attempt = 1;
        loop {
            let mut lease = self.server_lease(backend).await?;
            match run_atomically(&mut lease.conn(), &plan).await {
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
            Some(Backend::Sqlite(executor)) => executor.close().await,
            Some(Backend::Postgres(pool, _)) => pool.close(),
            Some(Backend::Mysql(pool, _)) => pool.close(),
            None => {}
        }
    }

    /// What a transaction runs on, within `max_wait`: SQLite waits for the writer to be
    /// free and begins there; servers wait for a pooled connection.
    async fn transaction_lease(&self) -> Result<Lease> {
        match self.backend().await? {
            Backend::Sqlite(executor) => Ok(Lease::Sqlite {
                tx: executor.begin().await?,
                executor: executor.clone(),
            }),
            server => Ok(Lease::Server(self.server_lease(server).await?)),
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
        let mut lease = tokio::time::timeout(max_wait, self.transaction_lease())
            .await
            .map_err(|_| max_wait_passed(max_wait))??;
        if let Lease::Server(server) = &mut lease {
            for sql in begin_sql {
                server.conn().raw(sql).await?;
            }
        }
        Ok(Transaction::open(lease, self.dialect, timeout))
    }

    /// Begins a transaction for the JS thread and stores it in `slot`. On a connected
    /// SQLite database the BEGIN goes straight to the writer's queue; `reply` then
    /// hears within `max_wait` either way.
    pub fn dispatch_begin(
        self: &Arc<Self>,
        settings: TxSettings,
        slot: Arc<OnceCell<Arc<Transaction>>>,
        reply: Reply,
    ) {
        let executor = match self.backend.get() {
            Some((Backend::Sqlite(executor), _)) if self.flushed.load(Ordering::Acquire) => {
                executor
            }
            _ => {
                let adapter = Arc::clone(self);
                runtime().spawn(async move {
                    let begun = adapter
                        .begin(
                            settings.timeout,
                            settings.max_wait,
                            settings.isolation.as_deref(),
                        )
                        .await
                        .and_then(|tx| store_transaction(&slot, tx));
                    reply.deliver(begun);
                });
                return;
            }
        };
        if let Err(err) = begin_statements(self.dialect, settings.isolation.as_deref()) {
            reply.deliver(Err(err));
            return;
        }
        let waiting = Arc::new(std::sync::Mutex::new(Some(reply)));
        let max_wait = settings.max_wait;
        let gave_up = Arc::clone(&waiting);
        runtime().spawn(async move {
            tokio::time::sleep(max_wait).await;
            if let Some(reply) = gave_up.lock().unwrap_or_else(|e| e.into_inner()).take() {
                reply.deliver(Err(max_wait_passed(max_wait)));
            }
        });
        let tx = executor.next_tx_id();
        let begin = SqliteBegin {
            waiting,
            lease: Lease::Sqlite {
                executor: executor.clone(),
                tx,
            },
            timeout: settings.timeout,
            slot,
        };
        executor.send(Work::Begin, Some(tx), Box::new(begin));
    }
}

/// How an interactive transaction was asked for.
pub struct TxSettings {
    pub timeout: Duration,
    pub max_wait: Duration,
    pub isolation: Option<String>,
}

fn max_wait_passed(max_wait: Duration) -> KavachError {
    KavachError::transaction(format!(
        "Unable to start a transaction in the given time (maxWait {} ms).",
        max_wait.as_millis()
    ))
}

/// Hands a begun transaction to its handle, or rolls it back at once if the handle is
/// gone (only this task still holds the slot).
fn store_transaction(
    slot: &Arc<OnceCell<Arc<Transaction>>>,
    tx: Arc<Transaction>,
) -> Result<Outcome> {
    if Arc::strong_count(slot) == 1 {
        tx.abandon();
        return Err(KavachError::transaction(
            "Transaction rolled back: its handle was gone before it began.",
        ));
    }
    slot.set(tx)
        .map_err(|_| KavachError::transaction("Transaction already started."))?;
    Ok(Outcome::Nothing)
}

/// The reply to a BEGIN sent straight to the SQLite writer: it opens the transaction
/// unless `max_wait` passed first (then the writer rolls it back at once).
struct SqliteBegin {
    waiting: Arc<std::sync::Mutex<Option<Reply>>>,
    lease: Lease,
    timeout: Duration,
    slot: Arc<OnceCell<Arc<Transaction>>>,
}

impl Deliver for SqliteBegin {
    fn deliver(self: Box<Self>, result: Result<Outcome>) -> bool {
        let Some(reply) = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return false;
        };
        let SqliteBegin {
            lease,
            timeout,
            slot,
            ..
        } = *self;
        let outcome = result.and_then(|_| {
            store_transaction(&slot, Transaction::open(lease, Dialect::Sqlite, timeout))
        });
        reply.deliver(outcome);
        true
    }

    fn abandoned(&self) -> bool {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
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
    /// A transaction begun on `lease`; it rolls back by itself after `timeout`.
    fn open(lease: Lease, dialect: Dialect, timeout: Duration) -> Arc<Transaction> {
        let tx = Arc::new(Transaction {
            state: Mutex::new(TxState::Open(lease)),
            dialect,
            started: Instant::now(),
            timeout,
            expiry: std::sync::Mutex::new(None),
        });
        let watcher = Arc::clone(&tx);
        let handle = runtime().spawn(async move {
            tokio::time::sleep(timeout).await;
            watcher.expire().await;
        });
        *tx.expiry.lock().expect("expiry lock") = Some(handle.abort_handle());
        tx
    }

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

    /// Starts a call from the JS thread: on SQLite it joins the writer's queue at once
    /// (calls queued before a commit or rollback run before it, in the transaction).
    pub fn dispatch(self: &Arc<Self>, method: &'static Method, args: Vec<JsValue>, reply: Reply) {
        if let Ok(state) = self.state.try_lock() {
            if let TxState::Open(Lease::Sqlite { executor, tx }) = &*state {
                executor.send(Work::Call(method, args), Some(*tx), reply);
                return;
            }
        }
        let tx = Arc::clone(self);
        runtime().spawn(async move {
            reply.deliver(tx.call(method, args).await);
        });
    }

    pub async fn call(&self, method: &'static Method, args: Vec<JsValue>) -> Result<Outcome> {
        let plan = plan(method, &args, self.dialect)?;
        let mut state = self.state.lock().await;
        match &mut *state {
            TxState::Open(lease) => lease.run(plan).await,
            closed => Err(self.closed(closed, "query")),
        }
    }

    fn stop_expiry(&self) {
        if let Some(handle) = self.expiry.lock().expect("expiry lock").take() {
            handle.abort();
        }
    }

    /// Ends the transaction, releasing its connection.
    async fn finish(&self, sql: &'static str) -> Result<()> {
        let mut state = self.state.lock().await;
        let TxState::Open(lease) = &mut *state else {
            return match sql {
                "ROLLBACK" => Ok(()),
                _ => Err(self.closed(&state, "commit")),
            };
        };
        self.stop_expiry();
        let result = lease.raw(sql).await;
        if result.is_err() && sql == "COMMIT" {
            // A refused COMMIT (e.g. SQLITE_BUSY) leaves the transaction open.
            let _ = lease.raw("ROLLBACK").await;
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

    /// Commits (`COMMIT`) or rolls back (`ROLLBACK`) for the JS thread: on SQLite the
    /// statement joins the writer's queue at once, behind the calls made before it. (A
    /// COMMIT the database refuses is rolled back there; the transaction then counts as
    /// committed for the error message of any later call.)
    pub fn dispatch_end(self: &Arc<Self>, sql: &'static str, reply: Reply) {
        if let Ok(mut state) = self.state.try_lock() {
            if let TxState::Open(Lease::Sqlite { executor, tx }) = &*state {
                let (executor, tx) = (executor.clone(), *tx);
                self.stop_expiry();
                *state = match sql {
                    "COMMIT" => TxState::Committed,
                    _ => TxState::RolledBack,
                };
                drop(state);
                executor.send(Work::End(sql), Some(tx), reply);
                return;
            }
        }
        let tx = Arc::clone(self);
        runtime().spawn(async move {
            reply.deliver(tx.finish(sql).await.map(|()| Outcome::Nothing));
        });
    }

    /// Rolls back an open transaction whose owner went away, answering nobody.
    pub fn abandon(self: &Arc<Self>) {
        if let Ok(state) = self.state.try_lock() {
            if !matches!(*state, TxState::Open(_)) {
                return;
            }
        }
        self.dispatch_end("ROLLBACK", Box::new(Unanswered));
    }

    async fn expire(&self) {
        let mut state = self.state.lock().await;
        if let TxState::Open(lease) = &mut *state {
            if lease.raw("ROLLBACK").await.is_err() {
                lease.discard();
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
    if let Some(write) = &plan.before {
        let affected = conn.execute(write, model).await?;
        if let (Expect::AfterWrite { missing }, 0) = (plan.expect, affected) {
            return match missing {
                Some(operation) => Err(KavachError::record_not_found(&model.name, operation)),
                None => Ok(Outcome::Null),
            };
        }
    }
    match plan.expect {
        Expect::Affected { returns } => {
            let affected = conn.execute(&plan.statement, model).await?;
            Ok(match returns {
                Returns::Count => Outcome::Count(affected),
                _ => Outcome::Nothing,
            })
        }
        Expect::AffectedOne { operation } => {
            let affected = conn.execute(&plan.statement, model).await?;
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
    match err {
        sqlx::Error::PoolTimedOut => {}
        // close() ran while the call waited for a connection.
        sqlx::Error::PoolClosed => return closed_error(),
        other => return unreachable(server, &other),
    }
    match reachable(server, probe).await {
        Ok(()) => map_sqlx_error(err, None),
        Err(unreachable) => unreachable,
    }
}

/// A failed connection attempt as Prisma 7 reports it: bad credentials P1000, a role
/// without access P1010, an unknown database P1003, TLS P1011, else P1001. (Prisma's
/// MariaDB adapter reports all of these as a pool timeout, P2039; the codes here are the
/// ones it gives on PostgreSQL, and its Rust engine gave on both.)
fn unreachable(server: &Server, err: &sqlx::Error) -> KavachError {
    let database = server.database.as_deref().unwrap_or("(not available)");
    match err {
        sqlx::Error::Database(db) => {
            match crate::error::database_error_code(db.as_ref()).as_str() {
                // PostgreSQL invalid_password; MySQL access denied (with / without password).
                "28P01" | "1045" | "1698" => KavachError::connection(
                    "P1000",
                    format!(
                        "Authentication failed against the database server, the provided database credentials for `{}` are not valid",
                        server.user
                    ),
                ),
                // PostgreSQL: no such role / no access; MySQL: no access to the database.
                "28000" | "1044" => KavachError::connection(
                    "P1010",
                    format!("User was denied access on the database `{database}`"),
                ),
                "3D000" | "1049" => KavachError::connection(
                    "P1003",
                    format!("Database `{database}` does not exist on the database server"),
                ),
                _ => KavachError::connection(
                    "P1001",
                    format!(
                        "Can't reach database server at {} ({})",
                        server.location(),
                        db.message()
                    ),
                ),
            }
        }
        sqlx::Error::Tls(reason) => {
            KavachError::connection("P1011", format!("Error opening a TLS connection: {reason}"))
        }
        other => {
            let reason = match other {
                sqlx::Error::Io(io) => io.to_string(),
                other => other.to_string(),
            };
            // sqlx reports a refused handshake ("server does not support TLS") and a
            // rejected certificate ("invalid peer certificate") as I/O or protocol errors.
            let lower = reason.to_ascii_lowercase();
            let code = if lower.contains("tls") || lower.contains("certificate") {
                "P1011"
            } else {
                "P1001"
            };
            let message = match code {
                "P1011" => format!("Error opening a TLS connection: {reason}"),
                _ => format!(
                    "Can't reach database server at {} ({reason})",
                    server.location()
                ),
            };
            KavachError::connection(code, message)
        }
    }
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
