//! kavach-native: the KavachOS Prisma adapter's methods served from Rust.
//!
//! The napi surface is deliberately small — a handle per adapter and per transaction,
//! each with one `call(methodIndex, args)` — and `index.js` builds the camelCase
//! adapter object on top of it from [`method_names`].

#![deny(clippy::all)]

// Rows are built on the database threads and freed on the JS thread; glibc's malloc
// made that cross-thread traffic about a quarter of the JS thread's time per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bridge;
mod completion;
pub mod config;
pub mod db;
pub mod dialect;
pub mod error;
mod js;
pub mod methods;
pub mod observe;
pub mod plan;
pub mod schema;
pub mod value;

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Unknown;
use napi::{Env, Status};
use napi_derive::napi;
use tokio::sync::OnceCell;

use crate::completion::Completer;
use crate::db::{Adapter, Deliver, Outcome, Transaction, TxSettings};
use crate::error::KavachError;
use crate::js::{ErrorFactory, JsArgs, RowFactories};
use crate::methods::{Method, METHODS};
use crate::observe::{Meter, StatementLog};

#[napi(object, object_to_js = false)]
pub struct AdapterOptions {
    /// Create no tables on first use (you manage the schema yourself).
    pub skip_migrations: Option<bool>,
    /// SQLite: 'iso8601' (Prisma 7's default), 'unixepoch-ms' or 'unixepoch-s'; by default
    /// detected per column from the data already there.
    pub timestamp_format: Option<String>,
    /// PostgreSQL read replicas: reads outside transactions go to one that has replayed
    /// this adapter's writes, everything else to the primary (`url`).
    pub replicas: Option<Vec<String>>,
}

fn method(index: u32) -> Result<&'static Method, KavachError> {
    METHODS
        .get(index as usize)
        .ok_or_else(|| KavachError::database(format!("no adapter method has index {index}")))
}

/// Runs `work` on the shared tokio runtime and returns its promise. Every future owns
/// what it uses (cloned `Arc`s): none may borrow the JS object, which a terminating
/// worker thread can free while the future is still running.
fn spawn<'env, F>(
    env: &'env Env,
    completer: &Arc<Completer>,
    work: F,
) -> napi::Result<Unknown<'env>>
where
    F: std::future::Future<Output = Result<Outcome, KavachError>> + Send + 'static,
{
    let (reply, promise) = completer.promise(env.raw())?;
    db::runtime().spawn(async move {
        Box::new(reply).deliver(work.await);
    });
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
}

/// The longest wait a JS timer holds (2^31 - 1 ms); Prisma's own timers stop there too.
pub const MAX_TIMER_MS: f64 = 2_147_483_647.0;

/// A transaction option in milliseconds as a `Duration`, refusing what no timer can wait
/// (index.js checks first; this keeps any other caller from a panicking conversion).
fn timer_duration(option: &str, ms: f64) -> napi::Result<Duration> {
    if (0.0..=MAX_TIMER_MS).contains(&ms) {
        Ok(Duration::from_millis(ms as u64))
    } else {
        Err(napi::Error::new(
            Status::InvalidArg,
            format!("Invalid `transaction()` invocation: `{option}` must be a number of milliseconds from 0 to {MAX_TIMER_MS}"),
        ))
    }
}

/// Where one call's statements are recorded (`callLogged`), for query events and spans.
#[napi(js_name = "StatementLog")]
pub struct JsStatementLog {
    log: StatementLog,
}

/// A statement a call ran, as recorded in a [`JsStatementLog`].
#[napi(object)]
pub struct StatementEntry {
    /// Its SQL text, with placeholders (never values).
    pub sql: String,
    /// Its bound values as a JSON array; secret fields' values are redacted unless the
    /// log reveals them.
    pub params: String,
    /// The table it reads or writes ('' for transaction control).
    pub table: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started: f64,
    /// How long it ran, in milliseconds.
    pub duration: f64,
    /// Rows returned or affected; absent when it failed.
    pub rows: Option<f64>,
    /// Does it return rows (`rows` counts those), or only affect them?
    pub returns_rows: bool,
    /// The Prisma code (or error class) it failed with.
    pub error: Option<String>,
}

impl JsStatementLog {
    pub(crate) fn log(&self) -> StatementLog {
        self.log.clone()
    }
}

#[napi]
impl JsStatementLog {
    /// A log; with `revealSecrets`, secret fields' values appear in `params` as they are.
    #[napi(constructor)]
    pub fn new(reveal_secrets: bool) -> Self {
        JsStatementLog {
            log: StatementLog::new(reveal_secrets),
        }
    }

    /// The statements recorded since the last `take()`, in the order they ran.
    #[napi]
    pub fn take(&self) -> Vec<StatementEntry> {
        self.log
            .take()
            .into_iter()
            .map(|r| StatementEntry {
                sql: r.sql,
                params: r.params,
                table: r.table.to_string(),
                started: r.started_ms,
                duration: r.duration_ms,
                rows: r.rows.map(|n| n as f64),
                returns_rows: r.returns_rows,
                error: r.error,
            })
            .collect()
    }
}

/// One adapter: a database and its connections.
#[napi]
pub struct NativeAdapter {
    inner: Arc<Adapter>,
    completer: Arc<Completer>,
    /// Reads go to the primary even when there are replicas.
    primary_only: bool,
}

#[napi]
impl NativeAdapter {
    /// Checks the URL and options at once; connects on first use.
    #[napi(
        constructor,
        ts_args_type = "url: string, options: AdapterOptions | undefined | null, rowFactories: Array<(...values: unknown[]) => object>, errorFactory?: (name: string, code: string | undefined, message: string, meta: object | undefined, cause: unknown) => Error"
    )]
    pub fn new(
        env: Env,
        url: String,
        options: Option<AdapterOptions>,
        row_factories: RowFactories,
        error_factory: Option<ErrorFactory>,
    ) -> napi::Result<Self> {
        let options = options.unwrap_or(AdapterOptions {
            skip_migrations: None,
            timestamp_format: None,
            replicas: None,
        });
        let timestamp_format = match options.timestamp_format.as_deref() {
            None => None,
            Some(name) => Some(value::TimestampFormat::parse(name).ok_or_else(|| {
                napi::Error::new(
                    Status::InvalidArg,
                    format!("createAdapter: timestampFormat '{name}' is not one of 'iso8601', 'unixepoch-ms', 'unixepoch-s'"),
                )
            })?),
        };
        let options = config::Options {
            skip_migrations: options.skip_migrations.unwrap_or(false),
            timestamp_format,
            replicas: options.replicas.unwrap_or_default(),
        };
        let config =
            config::parse(&url, options).map_err(|m| napi::Error::new(Status::InvalidArg, m))?;
        Ok(NativeAdapter {
            inner: Arc::new(Adapter::new(config)),
            completer: Completer::new(env.raw(), &row_factories, error_factory.as_ref())?,
            primary_only: false,
        })
    }

    /// The same adapter, with every call on the primary (`$primary()`).
    #[napi]
    pub fn primary(&self) -> NativeAdapter {
        NativeAdapter {
            inner: Arc::clone(&self.inner),
            completer: Arc::clone(&self.completer),
            primary_only: true,
        }
    }

    #[napi(
        ts_args_type = "methodIndex: number, args: unknown[]",
        ts_return_type = "Promise<unknown>"
    )]
    pub fn call<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
    ) -> napi::Result<Unknown<'env>> {
        self.start_call(env, method_index, args, None)
    }

    /// `call`, recording the statements it runs in `log`.
    #[napi(
        ts_args_type = "methodIndex: number, args: unknown[], log: StatementLog",
        ts_return_type = "Promise<unknown>"
    )]
    pub fn call_logged<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
        log: &JsStatementLog,
    ) -> napi::Result<Unknown<'env>> {
        self.start_call(env, method_index, args, Some(log.log()))
    }

    /// Where the adapter's database is, as traces name it (never the password).
    #[napi]
    pub fn target(&self) -> observe::TargetInfo {
        observe::target_info(self.inner.dialect(), self.inner.config())
    }

    /// The adapter's counters and gauges now, as JSON in the shape of Prisma's
    /// `$metrics.json()` (index.js formats it, or renders Prometheus text).
    #[napi]
    pub fn metrics(&self) -> String {
        let provider = self.inner.dialect().provider();
        observe::snapshot(provider, &self.completer.metrics, self.inner.pool_stats()).to_string()
    }

    /// A transaction handle; `begin()` on it starts the database transaction.
    #[napi]
    pub fn transaction(
        &self,
        timeout_ms: f64,
        max_wait_ms: f64,
        isolation_level: Option<String>,
    ) -> napi::Result<NativeTransaction> {
        Ok(NativeTransaction {
            adapter: Arc::clone(&self.inner),
            completer: Arc::clone(&self.completer),
            timeout: timer_duration("timeout", timeout_ms)?,
            max_wait: timer_duration("maxWait", max_wait_ms)?,
            isolation_level,
            tx: Arc::new(OnceCell::new()),
        })
    }

    /// Connects now (creating missing tables unless `skipMigrations`) and resolves with
    /// the names of the tables this adapter created.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn connect<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let adapter = Arc::clone(&self.inner);
        spawn(env, &self.completer, async move {
            adapter.created_tables().await.map(Outcome::Strings)
        })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let adapter = Arc::clone(&self.inner);
        spawn(env, &self.completer, async move {
            adapter.close().await;
            Ok(Outcome::Nothing)
        })
    }
}

impl NativeAdapter {
    fn start_call<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
        log: Option<StatementLog>,
    ) -> napi::Result<Unknown<'env>> {
        let (reply, promise) = self.completer.promise(env.raw())?;
        match method(method_index) {
            Ok(method) => {
                let meter = Meter::start(method_index as usize);
                let reply = reply.for_call(method.name, meter, log);
                self.inner
                    .dispatch_routed(method, args.0, Box::new(reply), self.primary_only)
            }
            Err(err) => {
                Box::new(reply).deliver(Err(err));
            }
        }
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }
}

/// An interactive transaction: every call runs on its one connection until commit or
/// rollback (or its timeout, after which calls fail with P2028).
#[napi]
pub struct NativeTransaction {
    adapter: Arc<Adapter>,
    completer: Arc<Completer>,
    timeout: Duration,
    max_wait: Duration,
    isolation_level: Option<String>,
    tx: Arc<OnceCell<Arc<Transaction>>>,
}

/// The handle is gone (collected, or its worker thread terminated) with the transaction
/// still open: nobody can commit it any more, so it rolls back now rather than holding
/// its locks until its timeout. A BEGIN still under way sees the handle gone when it
/// lands and rolls back there (`db::store_transaction`).
impl Drop for NativeTransaction {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.get() {
            tx.abandon();
        }
    }
}

fn started(cell: &OnceCell<Arc<Transaction>>) -> Result<Arc<Transaction>, KavachError> {
    cell.get()
        .cloned()
        .ok_or_else(|| KavachError::transaction("Transaction not started: call begin() first."))
}

impl NativeTransaction {
    fn start_call<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
        log: Option<StatementLog>,
    ) -> napi::Result<Unknown<'env>> {
        let (reply, promise) = self.completer.promise(env.raw())?;
        match started(&self.tx).and_then(|tx| Ok((tx, method(method_index)?))) {
            Ok((tx, method)) => {
                let meter = Meter::start(method_index as usize);
                let reply = reply.for_call(method.name, meter, log);
                tx.dispatch(method, args.0, Box::new(reply))
            }
            Err(err) => {
                Box::new(reply).deliver(Err(err));
            }
        }
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    fn end<'env>(&self, env: &'env Env, sql: &'static str) -> napi::Result<Unknown<'env>> {
        let (reply, promise) = self.completer.promise(env.raw())?;
        match started(&self.tx) {
            Ok(tx) => tx.dispatch_end(sql, Box::new(reply)),
            Err(err) => {
                Box::new(reply).deliver(Err(err));
            }
        }
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }
}

#[napi]
impl NativeTransaction {
    #[napi(ts_return_type = "Promise<void>")]
    pub fn begin<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let (reply, promise) = self.completer.promise(env.raw())?;
        let settings = TxSettings {
            timeout: self.timeout,
            max_wait: self.max_wait,
            isolation: self.isolation_level.clone(),
        };
        self.adapter
            .dispatch_begin(settings, Arc::clone(&self.tx), Box::new(reply));
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    #[napi(
        ts_args_type = "methodIndex: number, args: unknown[]",
        ts_return_type = "Promise<unknown>"
    )]
    pub fn call<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
    ) -> napi::Result<Unknown<'env>> {
        self.start_call(env, method_index, args, None)
    }

    /// `call`, recording the statements it runs in `log`.
    #[napi(
        ts_args_type = "methodIndex: number, args: unknown[], log: StatementLog",
        ts_return_type = "Promise<unknown>"
    )]
    pub fn call_logged<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
        log: &JsStatementLog,
    ) -> napi::Result<Unknown<'env>> {
        self.start_call(env, method_index, args, Some(log.log()))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn commit<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        self.end(env, "COMMIT")
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn rollback<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        self.end(env, "ROLLBACK")
    }
}

/// The adapter's method names, in the order `call` indexes them.
#[napi]
pub fn method_names() -> Vec<String> {
    METHODS.iter().map(|m| m.name.to_string()).collect()
}

/// Every method as data (arguments, result kind), for generating `index.d.ts`.
#[napi]
pub fn methods_json() -> String {
    serde_json::Value::Array(METHODS.iter().map(Method::describe).collect()).to_string()
}

/// The embedded `schema.prisma` (the single model declaration).
#[napi]
pub fn schema_prisma() -> String {
    schema::SCHEMA_PRISMA.to_string()
}

/// The DDL the adapter runs to create every missing table, for a provider.
#[napi]
pub fn schema_ddl(provider: String) -> napi::Result<Vec<String>> {
    let dialect = dialect::Dialect::from_provider(&provider).ok_or_else(|| {
        napi::Error::new(
            Status::InvalidArg,
            format!("unknown provider '{provider}'; use sqlite, postgresql or mysql"),
        )
    })?;
    Ok(schema::SCHEMA
        .models
        .iter()
        .flat_map(|m| dialect.create_table(m))
        .collect())
}

/// The models as data, for generating TypeScript types and checking parity.
#[napi]
pub fn schema_json() -> String {
    let models: Vec<serde_json::Value> = schema::SCHEMA
        .models
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "table": m.table,
                "fields": m.fields.iter().map(|f| serde_json::json!({
                    "name": f.name,
                    "column": f.column,
                    "type": f.ty.prisma_name(),
                    "optional": f.optional,
                    "hasDefault": f.default.is_some(),
                    "id": f.id,
                    "unique": f.unique,
                })).collect::<Vec<_>>(),
                "indexes": m.indexes.iter().map(|i| serde_json::json!({
                    "name": i.name,
                    "fields": i.fields.iter().map(|&f| m.fields[f].name.clone()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(models).to_string()
}
