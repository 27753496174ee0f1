//! What an app sees of its calls besides their results: each statement a call ran (for
//! query events, slow-call warnings and trace spans, recorded only for calls that asked,
//! see [`StatementLog`]), and counters every call feeds (calls, errors, latency; pool and
//! queue gauges), read by `metrics()`. The counters are atomics: a call adds to them
//! without a lock, and only a failed call takes one (to count its error code).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value as Json};

use crate::config::{Config, Target};
use crate::dialect::Dialect;
use crate::error::{ErrorKind, KavachError, Result};
use crate::methods::METHODS;
use crate::plan::Statement;
use crate::schema::Model;
use crate::value::Value;

/// When a statement started: taken before it is called (SQLite's run before their future
/// is first polled).
pub struct Started {
    wall: SystemTime,
    at: Instant,
}

impl Started {
    pub fn now() -> Self {
        Started {
            wall: SystemTime::now(),
            at: Instant::now(),
        }
    }
}

/// What a statement's bound value of a secret field shows in logs.
pub const REDACTED: &str = "[redacted]";

/// One statement as it ran.
#[derive(Debug, Clone)]
pub struct StatementRecord {
    pub sql: String,
    /// The bound values as a JSON array; secret fields' values are [`REDACTED`].
    pub params: String,
    /// The table of the model it read or wrote ('' for transaction control).
    pub table: &'static str,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: f64,
    pub duration_ms: f64,
    /// Rows returned (reads) or affected (writes); none if it failed.
    pub rows: Option<u64>,
    /// Does it return rows (`rows` counts those), or only affect them?
    pub returns_rows: bool,
    /// The Prisma code (or error name) it failed with.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct LogInner {
    records: Mutex<Vec<StatementRecord>>,
    reveal_secrets: bool,
}

/// Where a call's statements are recorded, when its caller listens (a plan carries it:
/// `Plan::log`). Shared by the call's handle on the JS thread and the thread running it.
#[derive(Debug, Clone, Default)]
pub struct StatementLog(Arc<LogInner>);

impl StatementLog {
    /// A log; with `reveal_secrets`, secret fields' values appear in `params` as they are.
    pub fn new(reveal_secrets: bool) -> Self {
        StatementLog(Arc::new(LogInner {
            records: Mutex::new(Vec::new()),
            reveal_secrets,
        }))
    }

    /// Records one statement that ran from `started` to now with `result`.
    pub fn record<T>(
        &self,
        started: Started,
        statement: Option<(&Statement, &'static Model)>,
        sql: &str,
        result: &Result<T>,
        rows: Option<fn(&T) -> u64>,
        returns_rows: bool,
    ) {
        let Started { wall, at } = started;
        let elapsed = at.elapsed();
        let (params, table) = match statement {
            Some((statement, model)) => (self.params(statement, model), model.table.as_str()),
            None => ("[]".to_string(), ""),
        };
        let record = StatementRecord {
            sql: sql.to_string(),
            params,
            table,
            started_ms: epoch_ms(wall),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            rows: result
                .as_ref()
                .ok()
                .map(|r| rows.map_or(0, |count| count(r))),
            returns_rows,
            error: result.as_ref().err().map(error_type),
        };
        self.0
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// Everything recorded so far, leaving the log empty.
    pub fn take(&self) -> Vec<StatementRecord> {
        std::mem::take(&mut *self.0.records.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn params(&self, statement: &Statement, model: &Model) -> String {
        let values: Vec<Json> = statement
            .params
            .iter()
            .map(|bound| {
                let secret = bound.field.is_some_and(|f| model.fields[f].is_redacted());
                match (secret && !self.0.reveal_secrets, &bound.value) {
                    (true, Value::Null) => Json::Null,
                    (true, _) => Json::String(REDACTED.into()),
                    (false, value) => param_json(value),
                }
            })
            .collect();
        Json::Array(values).to_string()
    }
}

/// A bound value as a query event shows it.
fn param_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => json!(n),
        Value::Text(s) | Value::JsonText(s) => Json::String(s.clone()),
        // As Prisma's events show a Date: its `toJSON()`.
        Value::DateTime(ms) => Json::String(
            chrono::DateTime::from_timestamp_millis(*ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_else(|| ms.to_string()),
        ),
        Value::Json(json) => Json::String(json.to_string()),
    }
}

fn epoch_ms(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// What a failure is called in metrics and spans (`error.type`): its Prisma code, else
/// its class.
pub fn error_type(err: &KavachError) -> String {
    match err.kind {
        ErrorKind::Known(code) | ErrorKind::Connection(code) => code.to_string(),
        ErrorKind::Validation => "PrismaClientValidationError".to_string(),
        ErrorKind::Database => "PrismaClientUnknownRequestError".to_string(),
    }
}

/// Upper bounds of the latency histogram's buckets, in milliseconds.
const LATENCY_BOUNDS_MS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
    10000.0,
];

/// A histogram of fixed buckets (the last one unbounded), kept in atomics.
#[derive(Debug)]
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    /// Sum of the observations, in the unit's thousandths (µs for ms, milli-rows).
    sum_milli: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_milli: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64], value: f64) {
        let bucket = bounds.iter().position(|b| value <= *b).unwrap_or(N - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_milli
            .fetch_add((value * 1000.0) as u64, Ordering::Relaxed);
    }

    /// Prisma's `$metrics.json()` form: `[upper bound, count in that bucket]` pairs (the
    /// last bound `null`: +Inf), the sum and the count.
    fn to_json(&self, bounds: &[f64]) -> Json {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<Json> = counts
            .iter()
            .enumerate()
            .map(|(i, count)| json!([bounds.get(i), count]))
            .collect();
        json!({
            "buckets": buckets,
            "sum": self.sum_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            "count": counts.iter().sum::<u64>(),
        })
    }
}

#[derive(Debug)]
struct MethodStats {
    calls: AtomicU64,
    errors: AtomicU64,
    latency: Histogram<17>,
}

/// Calls, errors and latency of an adapter's calls, by method.
#[derive(Debug)]
pub struct CallMetrics {
    methods: Box<[MethodStats]>,
    /// Failed calls by (method, error type): only failures take this lock.
    errors_by_code: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Default for CallMetrics {
    fn default() -> Self {
        CallMetrics {
            methods: METHODS
                .iter()
                .map(|_| MethodStats {
                    calls: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    latency: Histogram::new(),
                })
                .collect(),
            errors_by_code: Mutex::new(BTreeMap::new()),
        }
    }
}

impl CallMetrics {
    /// Counts a finished call of the method at `index`, failed with `error` (its type).
    pub fn record(&self, index: usize, elapsed: Duration, error: Option<String>) {
        let Some(stats) = self.methods.get(index) else {
            return;
        };
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats
            .latency
            .observe(&LATENCY_BOUNDS_MS, elapsed.as_secs_f64() * 1000.0);
        if let Some(error) = error {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            let key = (METHODS[index].name, error);
            *self
                .errors_by_code
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert(0) += 1;
        }
    }
}

/// A call being timed: it counts in its adapter's metrics when its result is handed over
/// ([`Meter::finish`]). It holds no reference of its own (the reply already holds its
/// adapter's), so timing a call adds no shared count that two threads bounce between them.
pub struct Meter {
    index: usize,
    started: Instant,
}

impl Meter {
    pub fn start(index: usize) -> Self {
        Meter {
            index,
            started: Instant::now(),
        }
    }

    pub fn finish<T>(self, metrics: &CallMetrics, result: &Result<T>) {
        self.finish_as(metrics, result.as_ref().err().map(error_type));
    }

    /// Counts the call as failed with `error` (an error type), or as succeeded.
    pub fn finish_as(self, metrics: &CallMetrics, error: Option<String>) {
        metrics.record(self.index, self.started.elapsed(), error);
    }
}

/// Sizes of the writes SQLite's writer committed together (group commit).
const BATCH_BOUNDS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// What a SQLite database's executor threads count.
#[derive(Debug)]
pub struct SqliteStats {
    batches: Histogram<8>,
}

impl Default for SqliteStats {
    fn default() -> Self {
        SqliteStats {
            batches: Histogram::new(),
        }
    }
}

impl SqliteStats {
    /// Counts a group commit of `size` writes.
    pub fn committed_batch(&self, size: usize) {
        self.batches.observe(&BATCH_BOUNDS, size as f64);
    }
}

/// The gauges of one adapter's connections at this moment.
pub enum PoolStats {
    /// Not connected yet (or a Prisma client's, which the app's client reports).
    None,
    Server {
        /// Most connections it opens (`connection_limit`).
        size: usize,
        open: usize,
        idle: usize,
        /// Calls (or transactions) waiting for a connection.
        waiting: usize,
    },
    Sqlite {
        writer_queue: usize,
        reader_queue: usize,
        readers: usize,
        stats: Arc<SqliteStats>,
    },
}

fn counter(key: &str, labels: Json, value: u64, description: &str) -> Json {
    json!({ "key": key, "labels": labels, "value": value, "description": description })
}

/// The snapshot `metrics()` returns, in the shape of Prisma's `$metrics.json()`:
/// counters, gauges and histograms, each `{ key, labels, value, description }`.
pub fn snapshot(provider: &str, calls: &CallMetrics, pool: PoolStats) -> Json {
    let mut counters = Vec::new();
    let mut histograms = Vec::new();
    for (method, stats) in METHODS.iter().zip(calls.methods.iter()) {
        let count = stats.calls.load(Ordering::Relaxed);
        if count == 0 {
            continue;
        }
        let labels = json!({ "method": method.name });
        counters.push(counter(
            "kavach_calls_total",
            labels.clone(),
            count,
            "Adapter calls finished, by method",
        ));
        counters.push(counter(
            "kavach_call_errors_total",
            labels.clone(),
            stats.errors.load(Ordering::Relaxed),
            "Adapter calls that failed, by method",
        ));
        histograms.push(json!({
            "key": "kavach_call_duration_ms",
            "labels": labels,
            "value": stats.latency.to_json(&LATENCY_BOUNDS_MS),
            "description": "Time from a call to its result, in milliseconds, by method",
        }));
    }
    for ((method, code), count) in calls
        .errors_by_code
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        counters.push(counter(
            "kavach_call_errors_by_code_total",
            json!({ "method": method, "code": code }),
            *count,
            "Adapter calls that failed, by method and error code",
        ));
    }
    let gauge = |key: &str, value: usize, description: &str| json!({ "key": key, "labels": { "provider": provider }, "value": value, "description": description });
    let mut gauges = Vec::new();
    match pool {
        PoolStats::None => {}
        PoolStats::Server {
            size,
            open,
            idle,
            waiting,
        } => {
            gauges.push(gauge(
                "kavach_pool_connections_max",
                size,
                "Most connections the pool opens (connection_limit)",
            ));
            gauges.push(gauge(
                "kavach_pool_connections_open",
                open,
                "Connections open, idle or in use",
            ));
            gauges.push(gauge(
                "kavach_pool_connections_idle",
                idle,
                "Connections open and idle",
            ));
            gauges.push(gauge(
                "kavach_pool_connections_busy",
                open.saturating_sub(idle),
                "Connections in use",
            ));
            gauges.push(gauge(
                "kavach_pool_waiters",
                waiting,
                "Calls and transactions waiting for a connection",
            ));
        }
        PoolStats::Sqlite {
            writer_queue,
            reader_queue,
            readers,
            stats,
        } => {
            gauges.push(gauge(
                "kavach_sqlite_writer_queue",
                writer_queue,
                "Jobs waiting for the writer thread",
            ));
            gauges.push(gauge(
                "kavach_sqlite_reader_queue",
                reader_queue,
                "Reads waiting for a reader thread",
            ));
            gauges.push(gauge(
                "kavach_sqlite_readers",
                readers,
                "Reader threads (file databases)",
            ));
            histograms.push(json!({
                "key": "kavach_sqlite_group_commit_size",
                "labels": { "provider": provider },
                "value": stats.batches.to_json(&BATCH_BOUNDS),
                "description": "Writes committed together in one transaction by the writer thread",
            }));
        }
    }
    json!({ "counters": counters, "gauges": gauges, "histograms": histograms })
}

/// Where an adapter's database is, for spans (`db.namespace`, `server.address`,
/// `server.port`): never a password.
#[napi_derive::napi(object)]
pub struct TargetInfo {
    pub provider: String,
    /// The database name (PostgreSQL: `database|schema` with a `schema` parameter), the
    /// SQLite file's path, or ':memory:'.
    pub namespace: String,
    pub address: Option<String>,
    pub port: Option<u32>,
}

pub fn target_info(dialect: Dialect, config: &Config) -> TargetInfo {
    let (namespace, address, port) = match &config.target {
        Target::Memory => (":memory:".to_string(), None, None),
        Target::File(path) => (path.display().to_string(), None, None),
        Target::Postgres(server) | Target::Mysql(server) => {
            let database = server.database.clone().unwrap_or_default();
            let namespace = match &server.schema {
                Some(schema) => format!("{database}|{schema}"),
                None => database,
            };
            match &server.socket {
                Some(socket) => (namespace, Some(socket.clone()), None),
                None => (
                    namespace,
                    Some(server.host.clone()),
                    Some(u32::from(server.port)),
                ),
            }
        }
    };
    TargetInfo {
        provider: dialect.provider().to_string(),
        namespace,
        address,
        port,
    }
}
