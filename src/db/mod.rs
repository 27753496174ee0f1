//! Running plans: lazy connection and schema creation on first use, dispatch of each
//! call from the JS thread, and interactive transactions. Everything here is
//! provider-neutral; what a plan does with a connection is in `interpreter.rs` (the
//! [`Queryable`](interpreter::Queryable) seam that every provider implements), how a
//! column becomes a value in `decode.rs`, and each provider's connections in `sqlite/`
//! (executor threads) and `server/` (pools of sqlx connections).

pub mod decode;
pub mod interpreter;
mod migrate;
mod reply;
mod server;
mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OnceCell};

pub use interpreter::{Outcome, Record};
pub use reply::{Deliver, Reply};

use reply::{closed_error, Unanswered};
use server::{Replicas, ServerDatabase, ServerLease};
use sqlite::{Executor, Work};

use crate::config::{Config, Target};
use crate::dialect::Dialect;
use crate::error::{KavachError, Result};
use crate::methods::Method;
use crate::observe::{PoolStats, StatementLog};
use crate::plan::{plan, Plan};
use crate::value::JsValue;

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

/// A connected database and the tables its first connection created.
type Connected<T> = OnceCell<(T, Vec<String>)>;

enum Backend {
    /// A writer thread (every write and transaction queue on it, so writers in this
    /// process never fight over SQLite's lock) and, for files, reader threads.
    Sqlite {
        executor: Connected<Executor>,
        /// Calls made before the connection was up, kept in the order they were made
        /// so that they reach the executor in that order.
        early_calls: std::sync::Mutex<Vec<EarlyCall>>,
        /// Connected, and every early call went to the executor.
        flushed: AtomicBool,
    },
    /// A pool of connections to PostgreSQL or MySQL.
    Server(Arc<ServerDatabase>),
}

/// A call waiting for its adapter to connect.
type EarlyCall = (&'static Method, Vec<JsValue>, Reply);

/// What a transaction runs on: its place on the SQLite writer, or a server connection.
enum Lease {
    Sqlite { executor: Executor, tx: u64 },
    Server(Box<dyn ServerLease>),
}

impl Lease {
    async fn run(&mut self, plan: Plan) -> Result<Outcome> {
        match self {
            Lease::Sqlite { executor, tx } => executor.run_in(*tx, plan).await,
            Lease::Server(server) => server.run(&plan).await,
        }
    }

    /// Transaction control: BEGIN (servers), COMMIT, ROLLBACK.
    async fn raw(&mut self, sql: &'static str) -> Result<()> {
        match self {
            Lease::Sqlite { executor, tx } => executor.end(*tx, sql).await,
            Lease::Server(server) => server.raw(sql).await,
        }
    }

    fn discard(&mut self) {
        if let Lease::Server(server) = self {
            server.discard();
        }
    }
}

pub struct Adapter {
    config: Config,
    dialect: Dialect,
    backend: Backend,
    /// PostgreSQL read replicas, if any (`server/replicas.rs`).
    replicas: Option<Arc<Replicas>>,
    closed: AtomicBool,
}

impl Adapter {
    pub fn new(config: Config) -> Self {
        let (dialect, backend) = match config.target {
            Target::Memory | Target::File(_) => (
                Dialect::Sqlite,
                Backend::Sqlite {
                    executor: OnceCell::new(),
                    early_calls: std::sync::Mutex::new(Vec::new()),
                    flushed: AtomicBool::new(false),
                },
            ),
            Target::Postgres(ref server) => (
                Dialect::Postgres,
                Backend::Server(Arc::new(ServerDatabase::postgres(
                    server.clone(),
                    !config.skip_migrations,
                ))),
            ),
            Target::Mysql(ref server) => (
                Dialect::Mysql,
                Backend::Server(Arc::new(ServerDatabase::mysql(
                    server.clone(),
                    !config.skip_migrations,
                ))),
            ),
        };
        let replicas = (!config.replicas.is_empty()).then(|| {
            let nodes = config.replicas.iter().cloned();
            Arc::new(Replicas::new(
                nodes.map(|s| ServerDatabase::postgres(s, false)).collect(),
            ))
        });
        Adapter {
            config,
            dialect,
            backend,
            replicas,
            closed: AtomicBool::new(false),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn check_open(&self) -> Result<()> {
        match self.closed.load(Ordering::Acquire) {
            true => Err(closed_error()),
            false => Ok(()),
        }
    }

    /// Connects the SQLite executor (if not yet).
    async fn executor<'a>(&self, cell: &'a Connected<Executor>) -> Result<&'a Executor> {
        self.check_open()?;
        let migrate = !self.config.skip_migrations;
        let connect = || sqlite::connect(&self.config, migrate);
        Ok(&cell.get_or_try_init(connect).await?.0)
    }

    /// Connects (if not yet) and tells which tables this adapter created.
    pub async fn created_tables(&self) -> Result<Vec<String>> {
        let created = match &self.backend {
            Backend::Sqlite { executor, .. } => {
                self.executor(executor).await?;
                executor.get().map(|(_, created)| created)
            }
            Backend::Server(database) => return database.created_tables().await,
        };
        Ok(created.cloned().unwrap_or_default())
    }

    /// Starts one method call from the JS thread. On SQLite it goes straight to an
    /// executor thread (queued in call order until the first connection is up); on a
    /// server it runs as a task on the runtime.
    pub fn dispatch(self: &Arc<Self>, method: &'static Method, args: Vec<JsValue>, reply: Reply) {
        self.dispatch_routed(method, args, reply, false)
    }

    /// [`Self::dispatch`]; with `primary_only`, reads skip the replicas.
    pub fn dispatch_routed(
        self: &Arc<Self>,
        method: &'static Method,
        args: Vec<JsValue>,
        reply: Reply,
        primary_only: bool,
    ) {
        if let Err(err) = self.check_open() {
            reply.deliver(Err(err));
            return;
        }
        let (executor, early_calls, flushed) = match &self.backend {
            Backend::Sqlite {
                executor,
                early_calls,
                flushed,
            } => (executor, early_calls, flushed),
            Backend::Server(database) => {
                let (database, dialect) = (Arc::clone(database), self.dialect);
                let replicas = self.replicas.clone();
                let log = reply.statement_log();
                runtime().spawn(async move {
                    let call = async {
                        let plan = plan(method, &args, dialect)?.logged(log);
                        match &replicas {
                            Some(replicas) => replicas.call(&database, &plan, primary_only).await,
                            None => database.pool().await?.call(&plan).await,
                        }
                    };
                    reply.deliver(call.await);
                });
                return;
            }
        };
        if flushed.load(Ordering::Acquire) {
            if let Some((executor, _)) = executor.get() {
                executor.send(Work::Call(method, args), None, reply);
                return;
            }
        }
        let mut early = early_calls.lock().unwrap_or_else(|e| e.into_inner());
        if flushed.load(Ordering::Acquire) {
            drop(early);
            return self.dispatch(method, args, reply);
        }
        early.push((method, args, reply));
        if early.len() == 1 {
            let adapter = Arc::clone(self);
            runtime().spawn(async move { adapter.flush_early_calls().await });
        }
    }

    /// Connects SQLite, then hands the calls made meanwhile to the executor in order (or
    /// answers each with the connection error).
    async fn flush_early_calls(&self) {
        let Backend::Sqlite {
            executor,
            early_calls,
            flushed,
        } = &self.backend
        else {
            return;
        };
        let connected = self.executor(executor).await;
        let mut early = early_calls.lock().unwrap_or_else(|e| e.into_inner());
        let calls = std::mem::take(&mut *early);
        match connected {
            Ok(executor) => {
                for (method, args, reply) in calls {
                    executor.send(Work::Call(method, args), None, reply);
                }
                flushed.store(true, Ordering::Release);
            }
            Err(err) => {
                for (_, _, reply) in calls {
                    reply.deliver(Err(err.clone()));
                }
            }
        }
    }

    /// The gauges of its connections now (none before it connects).
    pub fn pool_stats(&self) -> PoolStats {
        match &self.backend {
            Backend::Sqlite { executor, .. } => executor
                .get()
                .map_or(PoolStats::None, |(executor, _)| executor.stats()),
            Backend::Server(database) => database.stats(),
        }
    }

    /// Closes every connection; later calls fail with a clear error.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        match &self.backend {
            Backend::Sqlite { executor, .. } => {
                if let Some((executor, _)) = executor.get() {
                    executor.close().await;
                }
            }
            Backend::Server(database) => database.close(),
        }
        if let Some(replicas) = &self.replicas {
            replicas.close();
        }
    }

    /// What a transaction runs on, within `max_wait`: SQLite waits for the writer to be
    /// free and begins there; servers wait for a pooled connection.
    async fn transaction_lease(&self) -> Result<Lease> {
        match &self.backend {
            Backend::Sqlite { executor, .. } => {
                let executor = self.executor(executor).await?;
                Ok(Lease::Sqlite {
                    tx: executor.begin().await?,
                    executor: executor.clone(),
                })
            }
            Backend::Server(database) => Ok(Lease::Server(database.pool().await?.lease().await?)),
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
        // Connecting (and creating the missing tables) is not waiting for a connection:
        // `max_wait` starts once the database is there.
        self.created_tables().await?;
        let mut lease = tokio::time::timeout(max_wait, self.transaction_lease())
            .await
            .map_err(|_| max_wait_passed(max_wait))??;
        if let Lease::Server(server) = &mut lease {
            for sql in begin_sql {
                server.raw(sql).await?;
            }
        }
        let tx = Transaction::open(lease, self.dialect, timeout);
        if let Some(replicas) = &self.replicas {
            tx.written_to(Arc::clone(replicas));
        }
        Ok(tx)
    }

    /// The SQLite executor, once it is connected and took every early call.
    fn ready_executor(&self) -> Option<&Executor> {
        match &self.backend {
            Backend::Sqlite {
                executor, flushed, ..
            } if flushed.load(Ordering::Acquire) => executor.get().map(|(executor, _)| executor),
            _ => None,
        }
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
        let Some(executor) = self.ready_executor() else {
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
    /// Told of the COMMIT, so that the adapter's later reads wait for a replica to have it.
    replicas: std::sync::OnceLock<Arc<Replicas>>,
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
            replicas: std::sync::OnceLock::new(),
        });
        let watcher = Arc::clone(&tx);
        let handle = runtime().spawn(async move {
            tokio::time::sleep(timeout).await;
            watcher.expire().await;
        });
        *tx.expiry.lock().expect("expiry lock") = Some(handle.abort_handle());
        tx
    }

    fn written_to(&self, replicas: Arc<Replicas>) {
        let _ = self.replicas.set(replicas);
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
        let log = reply.statement_log();
        runtime().spawn(async move {
            reply.deliver(tx.call(method, args, log).await);
        });
    }

    pub async fn call(
        &self,
        method: &'static Method,
        args: Vec<JsValue>,
        log: Option<StatementLog>,
    ) -> Result<Outcome> {
        let plan = plan(method, &args, self.dialect)?.logged(log);
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
        if let (Some(replicas), "COMMIT") = (self.replicas.get(), sql) {
            // Also after a failed COMMIT: the server may have committed before the failure.
            replicas.note_write();
        }
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
