//! SQLite's executors: one thread per connection, each owning its connection's handle
//! and taking jobs from a queue. A call from JS is queued straight from the JS thread
//! and its result goes straight back to it (two thread crossings per call, none
//! through tokio). The writer runs every write and transaction in arrival order; while
//! a transaction is open, jobs from outside it wait in line until it ends. For a file,
//! reader threads share one queue of reads (WAL lets them run beside the writer).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use tokio::runtime::Handle;

use super::connection::RawConnection;
use crate::db::decode::DateFormats;
use crate::db::interpreter::{complete_now, run_atomically, run_plan, Outcome};
use crate::db::reply::{closed_error, Reply, Waiter};
use crate::dialect::Dialect;
use crate::error::{KavachError, Result};
use crate::methods::Method;
use crate::observe::{PoolStats, SqliteStats, StatementLog};
use crate::plan::{plan, Plan};
use crate::value::JsValue;

pub(crate) enum Work {
    /// A method call, planned on the executor thread.
    Call(&'static Method, Vec<JsValue>),
    Plan(Plan),
    /// Opens the job's transaction once no other one is open.
    Begin,
    /// COMMIT or ROLLBACK of the job's transaction.
    End(&'static str),
    Close,
}

impl Work {
    fn writes(&self) -> bool {
        match self {
            Work::Call(method, _) => crate::methods::writes(method),
            Work::Plan(plan) => plan.writes,
            _ => true,
        }
    }
}

pub(super) struct Job {
    work: Work,
    /// The transaction the job belongs to.
    tx: Option<u64>,
    reply: Reply,
}

/// The queues of one SQLite database's executor threads.
#[derive(Clone)]
pub(crate) struct Executor {
    writer: flume::Sender<Job>,
    readers: Option<(flume::Sender<Job>, usize)>,
    next_tx: Arc<AtomicU64>,
    stats: Arc<SqliteStats>,
}

impl Executor {
    /// Starts the writer thread on `writer` and a reader thread on each of `readers`.
    pub(crate) async fn start(
        writer: SqliteConnection,
        readers: Vec<SqliteConnection>,
        formats: Arc<DateFormats>,
        runtime: Handle,
    ) -> Result<Executor> {
        let (writer_queue, writer_jobs) = flume::unbounded();
        let stats = Arc::new(SqliteStats::default());
        let writer_stats = Arc::clone(&stats);
        spawn_thread(
            "kavach-sqlite-writer",
            writer,
            Arc::clone(&formats),
            runtime.clone(),
            move |conn| run_writer(conn, &writer_jobs, &writer_stats),
        )
        .await?;
        let readers = match readers.len() {
            0 => None,
            count => {
                let (queue, jobs) = flume::unbounded();
                for conn in readers {
                    let jobs: flume::Receiver<Job> = jobs.clone();
                    spawn_thread(
                        "kavach-sqlite-reader",
                        conn,
                        Arc::clone(&formats),
                        runtime.clone(),
                        move |conn| run_reader(conn, &jobs),
                    )
                    .await?;
                }
                Some((queue, count))
            }
        };
        Ok(Executor {
            writer: writer_queue,
            readers,
            next_tx: Arc::new(AtomicU64::new(1)),
            stats,
        })
    }

    /// Its queues' depths and what its writer counted.
    pub(crate) fn stats(&self) -> PoolStats {
        let (reader_queue, readers) = self
            .readers
            .as_ref()
            .map_or((0, 0), |(queue, count)| (queue.len(), *count));
        PoolStats::Sqlite {
            writer_queue: self.writer.len(),
            reader_queue,
            readers,
            stats: Arc::clone(&self.stats),
        }
    }

    /// Reads outside transactions go to the readers (if any), the rest to the writer.
    fn queue_for(&self, work: &Work, tx: Option<u64>) -> &flume::Sender<Job> {
        match &self.readers {
            Some((readers, _)) if !work.writes() && tx.is_none() => readers,
            _ => &self.writer,
        }
    }

    /// Queues `work` (of transaction `tx`, if any) straight from the calling thread;
    /// `reply` gets its result on the executor thread.
    pub(crate) fn send(&self, work: Work, tx: Option<u64>, reply: Reply) {
        send_to(self.queue_for(&work, tx), Job { work, tx, reply });
    }

    async fn run(&self, work: Work, tx: Option<u64>) -> Result<Outcome> {
        ask(self.queue_for(&work, tx), work, tx).await
    }

    /// Waits until the writer is free and opens a transaction on it. Dropping the
    /// future before then (maxWait passed) gives the place in line up.
    pub(crate) async fn begin(&self) -> Result<u64> {
        let id = self.next_tx_id();
        self.run(Work::Begin, Some(id)).await?;
        Ok(id)
    }

    pub(crate) fn next_tx_id(&self) -> u64 {
        self.next_tx.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) async fn run_in(&self, tx: u64, plan: Plan) -> Result<Outcome> {
        self.run(Work::Plan(plan), Some(tx)).await
    }

    pub(crate) async fn end(&self, tx: u64, sql: &'static str) -> Result<()> {
        self.run(Work::End(sql), Some(tx)).await.map(drop)
    }

    /// Closes every connection once the jobs queued before have run.
    pub(crate) async fn close(&self) {
        let mut closing = vec![ask(&self.writer, Work::Close, None)];
        if let Some((readers, count)) = &self.readers {
            closing.extend((0..*count).map(|_| ask(readers, Work::Close, None)));
        }
        for done in closing {
            let _ = done.await;
        }
    }
}

fn send_to(queue: &flume::Sender<Job>, job: Job) {
    if let Err(flume::SendError(job)) = queue.send(job) {
        job.reply.deliver(Err(closed_error()));
    }
}

/// Queues `work` and waits for its result.
async fn ask(queue: &flume::Sender<Job>, work: Work, tx: Option<u64>) -> Result<Outcome> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let reply = Box::new(Waiter(sender));
    send_to(queue, Job { work, tx, reply });
    receiver.await.unwrap_or_else(|_| Err(closed_error()))
}

/// Runs `body` on a new thread that holds `conn`'s handle (locked out of sqlx's worker)
/// until it returns, then closes the connection and confirms to the job that asked.
/// Resolves once the thread holds the handle (or could not take it).
async fn spawn_thread(
    name: &str,
    mut conn: SqliteConnection,
    formats: Arc<DateFormats>,
    runtime: Handle,
    mut body: impl FnMut(&mut RawConnection) -> Option<Reply> + Send + 'static,
) -> Result<()> {
    let (started, holds_handle) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let close_reply = match runtime.block_on(conn.lock_handle()) {
                Ok(mut locked) => {
                    let _ = started.send(Ok(()));
                    // SAFETY: the handle stays locked to this thread until `raw` is gone.
                    let mut raw =
                        unsafe { RawConnection::new(locked.as_raw_handle().as_ptr(), formats) };
                    let reply = serve(&mut raw, &mut body);
                    drop(raw);
                    reply
                }
                Err(e) => {
                    let _ = started.send(Err(KavachError::database(format!(
                        "Cannot take the SQLite connection's handle: {e}"
                    ))));
                    None
                }
            };
            let _ = runtime.block_on(conn.close());
            if let Some(reply) = close_reply {
                reply.deliver(Ok(Outcome::Nothing));
            }
        })
        .map_err(|e| KavachError::database(format!("Cannot start a SQLite thread: {e}")))?;
    holds_handle
        .await
        .unwrap_or_else(|_| Err(KavachError::database("A SQLite thread stopped at start")))
}

/// Runs the thread's loop until it returns, starting it again after a panic (which
/// `perform` already contains for each job; this is for the loop's own bookkeeping): the
/// jobs in hand are answered by their replies' drop, a transaction left open is rolled
/// back, and the thread goes on serving the queue.
fn serve(
    conn: &mut RawConnection,
    body: &mut impl FnMut(&mut RawConnection) -> Option<Reply>,
) -> Option<Reply> {
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(conn))) {
            Ok(reply) => return reply,
            Err(_) => {
                if conn.in_transaction() {
                    let _ = conn.raw("ROLLBACK");
                }
            }
        }
    }
}

/// Runs one job's work. A panic in it (a bug, never an input: inputs are checked when
/// planned) fails that job alone; the connection and the thread go on.
fn perform(conn: &mut RawConnection, job: Job, in_transaction: bool) -> (Reply, Result<Outcome>) {
    let Job { work, reply, .. } = job;
    let log = reply.statement_log();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        perform_unguarded(conn, work, in_transaction, log)
    }))
    .unwrap_or_else(|panic| Err(KavachError::internal(panic.as_ref())));
    (reply, result)
}

fn perform_unguarded(
    conn: &mut RawConnection,
    work: Work,
    in_transaction: bool,
    log: Option<StatementLog>,
) -> Result<Outcome> {
    let plan = match work {
        Work::Call(method, args) => plan(method, &args, Dialect::Sqlite)?.logged(log),
        Work::Plan(plan) => plan,
        Work::End(sql) => return conn.raw(sql).map(|()| Outcome::Nothing),
        Work::Begin | Work::Close => unreachable!("handled by the executor loop"),
    };
    // The connection's statements run synchronously: these futures never wait.
    match in_transaction {
        true => complete_now(run_plan(conn, &plan)),
        false => complete_now(run_atomically(conn, &plan)),
    }
}

/// Answers every job still queued with the closed-adapter error.
fn refuse_rest(waiting: impl IntoIterator<Item = Job>, jobs: &flume::Receiver<Job>) {
    for job in waiting.into_iter().chain(jobs.try_iter()) {
        job.reply.deliver(Err(closed_error()));
    }
}

/// How long an executor thread that ran out of work keeps looking for more before it
/// sleeps: a call arriving meanwhile starts without a thread wake-up (tens of µs on a
/// virtual machine), and the thread that just ran a query, its caches warm, takes it.
/// It yields the CPU between looks, so a JS thread that shares its core runs meanwhile
/// (2 vCPUs: findAgentById sequential 30–43 µs with a busy spin of 25 µs, 18–22 µs
/// yielding for 50 µs; 64 in flight 220k → 290k calls/s).
fn spin_time() -> std::time::Duration {
    static SPIN: std::sync::LazyLock<std::time::Duration> = std::sync::LazyLock::new(|| {
        let micros = std::env::var("KAVACH_NATIVE_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_SPIN_MICROS);
        std::time::Duration::from_micros(micros)
    });
    *SPIN
}

const DEFAULT_SPIN_MICROS: u64 = 50;

/// The next job: keeps looking for `spin_time()`, then sleeps until one comes.
fn next_job(jobs: &flume::Receiver<Job>) -> Option<Job> {
    let spin = spin_time();
    if !spin.is_zero() {
        let start = std::time::Instant::now();
        loop {
            match jobs.try_recv() {
                Ok(job) => return Some(job),
                Err(flume::TryRecvError::Disconnected) => return None,
                Err(flume::TryRecvError::Empty) if start.elapsed() < spin => {
                    std::thread::yield_now();
                }
                Err(flume::TryRecvError::Empty) => break,
            }
        }
    }
    jobs.recv().ok()
}

fn run_reader(conn: &mut RawConnection, jobs: &flume::Receiver<Job>) -> Option<Reply> {
    while let Some(job) = next_job(jobs) {
        match job.work {
            Work::Close => return Some(job.reply),
            _ => {
                let (reply, result) = perform(conn, job, false);
                reply.deliver(result);
            }
        }
    }
    None
}

/// Writes queued outside transactions run together, up to this many per commit.
const MAX_BATCH: usize = 64;

fn run_writer(
    conn: &mut RawConnection,
    jobs: &flume::Receiver<Job>,
    stats: &SqliteStats,
) -> Option<Reply> {
    let mut open: Option<u64> = None;
    // Jobs from outside the open transaction, in arrival order, before any still in `jobs`.
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        let job = match waiting.pop_front() {
            Some(job) if open.is_none() => job,
            earlier => {
                if let Some(job) = earlier {
                    waiting.push_front(job);
                }
                next_job(jobs)?
            }
        };
        let blocked = open.is_some_and(|current| job.tx != Some(current));
        if blocked && !matches!(job.work, Work::Close) {
            waiting.push_back(job);
            continue;
        }
        match job.work {
            Work::Close => {
                refuse_rest(waiting, jobs);
                return Some(job.reply);
            }
            Work::Begin => {
                if job.reply.abandoned() {
                    continue;
                }
                let result = conn.raw("BEGIN IMMEDIATE");
                if result.is_ok() {
                    open = job.tx;
                }
                if !job.reply.deliver(result.map(|()| Outcome::Nothing)) && open.is_some() {
                    // Its caller stopped waiting (maxWait) just as it began.
                    let _ = conn.raw("ROLLBACK");
                    open = None;
                }
            }
            Work::Call(..) | Work::Plan(_) if job.tx.is_none() => {
                let mut batch = vec![job];
                while batch.len() < MAX_BATCH {
                    match waiting.pop_front().or_else(|| jobs.try_recv().ok()) {
                        Some(next) if next.tx.is_none() && is_call(&next.work) => batch.push(next),
                        Some(other) => {
                            waiting.push_front(other);
                            break;
                        }
                        None => break,
                    }
                }
                run_batch(conn, batch, stats);
            }
            _ => {
                let (reply, result) = match job.tx {
                    Some(id) if open == Some(id) => {
                        let commit = matches!(job.work, Work::End("COMMIT"));
                        let (reply, result) = perform(conn, job, true);
                        if commit && result.is_err() && conn.in_transaction() {
                            // A refused COMMIT (e.g. SQLITE_BUSY) leaves it open.
                            let _ = conn.raw("ROLLBACK");
                        }
                        (reply, result)
                    }
                    _ => match job.work {
                        Work::End(_) => (job.reply, Ok(Outcome::Nothing)),
                        _ => (
                            job.reply,
                            Err(KavachError::transaction(
                                "Transaction already closed: the database rolled it back.",
                            )),
                        ),
                    },
                };
                if open.is_some() && !conn.in_transaction() {
                    open = None;
                }
                reply.deliver(result);
            }
        }
    }
}

fn is_call(work: &Work) -> bool {
    matches!(work, Work::Call(..) | Work::Plan(_))
}

/// Runs calls queued together in one transaction, each in its own savepoint (a failing
/// call leaves no trace and does not affect the others), so a burst of writes costs
/// one commit — one sync of the journal — instead of one each. Every caller hears back
/// only after the commit.
fn run_batch(conn: &mut RawConnection, batch: Vec<Job>, stats: &SqliteStats) {
    let writes = batch.iter().any(|job| job.work.writes());
    if writes {
        stats.committed_batch(batch.len());
    }
    if batch.len() == 1 || !writes {
        for job in batch {
            let (reply, result) = perform(conn, job, false);
            reply.deliver(result);
        }
        return;
    }
    if let Err(err) = conn.raw("BEGIN IMMEDIATE") {
        for job in batch {
            job.reply.deliver(Err(err.clone()));
        }
        return;
    }
    let mut done: Vec<(Reply, Result<Outcome>)> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        let (reply, result) = match conn.raw("SAVEPOINT kavach_call") {
            Ok(()) => {
                let (reply, result) = perform(conn, job, true);
                if result.is_err() && conn.in_transaction() {
                    let _ = conn.raw("ROLLBACK TO kavach_call");
                }
                (reply, result)
            }
            Err(err) => (job.reply, Err(err)),
        };
        if !conn.in_transaction() {
            // The database rolled the whole batch back (I/O error, disk full): nothing
            // of it was kept; the rest of the queue runs as a new batch.
            let cause = result.err().unwrap_or_else(rolled_back);
            for (reply, _) in done {
                reply.deliver(Err(cause.clone()));
            }
            reply.deliver(Err(cause));
            let rest: Vec<Job> = jobs.collect();
            if !rest.is_empty() {
                run_batch(conn, rest, stats);
            }
            return;
        }
        let _ = conn.raw("RELEASE kavach_call");
        done.push((reply, result));
    }
    match conn.raw("COMMIT") {
        Ok(()) => {
            for (reply, result) in done {
                reply.deliver(result);
            }
        }
        Err(err) => {
            let _ = conn.raw("ROLLBACK");
            for (reply, _) in done {
                reply.deliver(Err(err.clone()));
            }
        }
    }
}

fn rolled_back() -> KavachError {
    KavachError::database("The database rolled the write back (see its log for the cause).")
}
