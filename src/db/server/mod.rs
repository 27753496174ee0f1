//! Server databases (PostgreSQL, MySQL/MariaDB): a pool of sqlx connections, each a
//! [`Connection`] for the interpreter. A provider is a [`Driver`] (how to connect, probe
//! and create the schema) in a file of its own; everything else — leasing, retrying a
//! call whose connection was lost, telling an unreachable server from a busy pool — is
//! here, the same for each.

mod mysql;
mod pool;
mod postgres;
mod replicas;

pub use replicas::Replicas;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;

use pool::{Pool, Pooled};

use super::interpreter::{run_atomically, run_plan, Connection, Outcome};
use super::reply::closed_error;
use crate::config::Server;
use crate::error::{map_sqlx_error, ErrorKind, KavachError, Result};
use crate::observe::PoolStats;
use crate::plan::Plan;

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a server provider brings: its connection type, connecting (with schema
/// creation) and a bare connection attempt.
trait Driver: Send + Sync + 'static {
    type Conn: Connection + Send + 'static;

    /// A pool for `server`; with `migrate`, missing tables are created first. Also
    /// returns the tables it created.
    fn connect(
        server: &Server,
        migrate: bool,
    ) -> impl Future<Output = Result<(Pool<Self::Conn>, Vec<String>)>> + Send;

    /// One direct connection attempt, to tell an unreachable server from a busy pool.
    fn probe(server: &Server) -> impl Future<Output = std::result::Result<(), sqlx::Error>> + Send;

    /// The server's WAL position: a primary's current one, a standby's replayed one. With
    /// `cached`, the one this connection saw last (0 if none): a standby never goes back
    /// while a connection to it lives.
    fn wal_position(
        conn: &mut Self::Conn,
        cached: bool,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// A server database, connected on first use.
pub(super) struct ServerDatabase {
    server: Server,
    migrate: bool,
    connect: ConnectFn,
    pool: OnceCell<Connected>,
    closed: AtomicBool,
}

/// A connected pool and the tables its first connection created.
type Connected = (Box<dyn ServerBackend>, Vec<String>);

type ConnectFn = for<'a> fn(&'a Server, bool) -> BoxFuture<'a, Result<Connected>>;

fn connect_boxed<D: Driver>(server: &Server, migrate: bool) -> BoxFuture<'_, Result<Connected>> {
    Box::pin(async move {
        let (servers, created) = Servers::<D>::connect(server, migrate).await?;
        Ok((Box::new(servers) as Box<dyn ServerBackend>, created))
    })
}

impl ServerDatabase {
    /// A PostgreSQL database; with `migrate`, the first connection creates the missing
    /// tables.
    pub(super) fn postgres(server: Server, migrate: bool) -> Self {
        Self::new::<postgres::Driver>(server, migrate)
    }

    /// A MySQL / MariaDB database; with `migrate`, the first connection creates the
    /// missing tables.
    pub(super) fn mysql(server: Server, migrate: bool) -> Self {
        Self::new::<mysql::Driver>(server, migrate)
    }

    fn new<D: Driver>(server: Server, migrate: bool) -> Self {
        ServerDatabase {
            server,
            migrate,
            connect: connect_boxed::<D>,
            pool: OnceCell::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// The pool, connecting first if need be.
    pub(super) async fn pool(&self) -> Result<&dyn ServerBackend> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        let connect = || (self.connect)(&self.server, self.migrate);
        Ok(&*self.pool.get_or_try_init(connect).await?.0)
    }

    /// Connects (if not yet) and tells which tables the first connection created.
    pub(super) async fn created_tables(&self) -> Result<Vec<String>> {
        self.pool().await?;
        Ok(self
            .pool
            .get()
            .map(|(_, created)| created.clone())
            .unwrap_or_default())
    }

    /// The pool's gauges now (none before it connects).
    pub(super) fn stats(&self) -> PoolStats {
        self.pool
            .get()
            .map_or(PoolStats::None, |(pool, _)| pool.stats())
    }

    /// Closes the pool; later calls fail with a clear error.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some((pool, _)) = self.pool.get() {
            pool.close();
        }
    }
}

/// A server database as the adapter sees it, whatever its provider.
pub(super) trait ServerBackend: Send + Sync {
    /// Runs one plan outside any transaction, on a pooled connection.
    fn call<'a>(&'a self, plan: &'a Plan) -> BoxFuture<'a, Result<Outcome>>;

    /// A pooled connection for a transaction.
    fn lease(&self) -> BoxFuture<'_, Result<Box<dyn ServerLease>>>;

    /// Closes the idle connections; those in use close when they come back.
    fn close(&self);

    /// Runs a read on this replica once it has replayed WAL position `target`; resolves
    /// with `Err(replayed)` if it has not within `wait`.
    fn call_replica<'a>(
        &'a self,
        plan: &'a Plan,
        target: u64,
        wait: Duration,
    ) -> BoxFuture<'a, Result<std::result::Result<Outcome, u64>>>;

    /// The server's current WAL position (a standby's: replayed).
    fn wal_position(&self) -> BoxFuture<'_, Result<u64>>;

    fn stats(&self) -> PoolStats;
}

/// A pooled connection held for a transaction.
pub(super) trait ServerLease: Send {
    /// Runs a plan in the transaction open on this connection.
    fn run<'a>(&'a mut self, plan: &'a Plan) -> BoxFuture<'a, Result<Outcome>>;

    /// Transaction control: BEGIN, COMMIT, ROLLBACK.
    fn raw<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Keeps a broken connection out of the pool.
    fn discard(&mut self);
}

impl<C: Connection + Send + 'static> ServerLease for Pooled<C> {
    fn run<'a>(&'a mut self, plan: &'a Plan) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(run_plan(&mut **self, plan))
    }

    fn raw<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin((**self).raw(sql))
    }

    fn discard(&mut self) {
        Pooled::discard(self);
    }
}

/// The pool of one server database of provider `D`.
struct Servers<D: Driver> {
    pool: Pool<D::Conn>,
    server: Server,
}

impl<D: Driver> Servers<D> {
    /// Connects (checking first that the server answers at all); also returns the
    /// tables it created.
    async fn connect(server: &Server, migrate: bool) -> Result<(Self, Vec<String>)> {
        reachable(server, D::probe(server)).await?;
        let (pool, created) = D::connect(server, migrate).await?;
        let server = server.clone();
        Ok((Servers { pool, server }, created))
    }

    /// A pooled connection. An empty pool must connect first: a server that refuses is
    /// reported at once (the pool itself would retry until pool_timeout).
    async fn acquire(&self) -> Result<Pooled<D::Conn>> {
        if self.pool.open() == 0 {
            reachable(&self.server, D::probe(&self.server)).await?;
        }
        match self.pool.acquire().await {
            Ok(conn) => Ok(conn),
            Err(e) => Err(acquire_error(e, &self.server, D::probe(&self.server)).await),
        }
    }

    fn max_attempts(&self) -> usize {
        self.server.connection_limit.unwrap_or(5) as usize + 1
    }

    /// A call that finds its pooled connection dead (server restart, terminated
    /// backend) runs again on a fresh one.
    async fn call_with_retries(&self, plan: &Plan) -> Result<Outcome> {
        let mut attempt = 1;
        loop {
            let mut conn = self.acquire().await?;
            match run_atomically(&mut *conn, plan).await {
                Err(err) if is_connection_lost(&err) && attempt < self.max_attempts() => {
                    conn.discard();
                    attempt += 1;
                }
                Err(err) => {
                    if !leaves_connection_clean(&err) {
                        conn.discard();
                    }
                    return Err(err);
                }
                ok => return ok,
            }
        }
    }
}

impl<D: Driver> ServerBackend for Servers<D> {
    fn call<'a>(&'a self, plan: &'a Plan) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(self.call_with_retries(plan))
    }

    fn lease(&self) -> BoxFuture<'_, Result<Box<dyn ServerLease>>> {
        Box::pin(async move { Ok(Box::new(self.acquire().await?) as Box<dyn ServerLease>) })
    }

    fn close(&self) {
        self.pool.close();
    }

    fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn call_replica<'a>(
        &'a self,
        plan: &'a Plan,
        target: u64,
        wait: Duration,
    ) -> BoxFuture<'a, Result<std::result::Result<Outcome, u64>>> {
        Box::pin(self.call_when_replayed(plan, target, wait))
    }

    fn wal_position(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            let position = D::wal_position(&mut conn, false).await;
            if position.is_err() {
                conn.discard();
            }
            position
        })
    }
}

impl<D: Driver> Servers<D> {
    async fn call_when_replayed(
        &self,
        plan: &Plan,
        target: u64,
        wait: Duration,
    ) -> Result<std::result::Result<Outcome, u64>> {
        let mut conn = tokio::time::timeout(replicas::ACQUIRE_WAIT, self.acquire())
            .await
            .map_err(|_| {
                KavachError::connection(
                    "P1001",
                    format!("{}: no connection in time", self.server.location()),
                )
            })??;
        let deadline = tokio::time::Instant::now() + wait;
        let mut cached = true;
        loop {
            let replayed = match D::wal_position(&mut conn, cached).await {
                Ok(replayed) => replayed,
                Err(err) => {
                    conn.discard();
                    return Err(err);
                }
            };
            if replayed >= target {
                break;
            }
            if !cached && tokio::time::Instant::now() >= deadline {
                return Ok(Err(replayed));
            }
            if !cached {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            cached = false;
        }
        match run_plan(&mut *conn, plan).await {
            Ok(outcome) => Ok(Ok(outcome)),
            Err(err) => {
                if !leaves_connection_clean(&err) {
                    conn.discard();
                }
                Err(err)
            }
        }
    }
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

/// Can the server be reached? `probe` is one direct connection attempt, bounded by
/// `connect_timeout`; the error (P1001) names host and port, never the password.
async fn reachable(
    server: &Server,
    probe: impl Future<Output = std::result::Result<(), sqlx::Error>>,
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
    probe: impl Future<Output = std::result::Result<(), sqlx::Error>>,
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
                _ => {
                    let hint = crate::error::pooler_refusal_hint(db.message())
                        .map(|hint| format!(": {hint}"))
                        .unwrap_or_default();
                    KavachError::connection(
                        "P1001",
                        format!(
                            "Can't reach database server at {} ({}){hint}",
                            server.location(),
                            db.message()
                        ),
                    )
                }
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
