//! Read replicas (`createAdapter(url, { replicas: [...] })`): reads outside transactions go
//! to a replica, everything else to the primary. Read-your-writes: once this adapter has
//! written, a replica serves a read only after it has replayed the primary's WAL position
//! taken after that write; a replica that has not within [`CATCH_UP_WAIT`] is skipped for a
//! while and the read goes to the primary. A replica that fails (down, restarting, a
//! recovery conflict) is skipped for [`DOWN_PAUSE`], then tried again. The primary never
//! waits on a replica: writes only mark that a position must be taken, and the next
//! replica read takes it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ServerDatabase;
use crate::db::interpreter::Outcome;
use crate::error::Result;
use crate::plan::Plan;

/// How long a read waits for a replica to replay this adapter's last write.
pub(super) const CATCH_UP_WAIT: Duration = Duration::from_millis(100);
/// How long a replica may take to hand out a connection before the read gives up on it.
pub(super) const ACQUIRE_WAIT: Duration = Duration::from_millis(500);
/// How long a replica that failed is left alone.
const DOWN_PAUSE: Duration = Duration::from_secs(1);
/// How long a replica that did not catch up in time is left alone.
const LAG_PAUSE: Duration = Duration::from_millis(250);

/// What the router did, for the adapter's metrics (not yet surfaced to JS).
#[derive(Default, Debug)]
pub struct RoutingCounters {
    pub primary_calls: AtomicU64,
    pub replica_reads: AtomicU64,
    /// Reads sent to the primary because no replica had caught up in time.
    pub lag_fallbacks: AtomicU64,
    /// Reads sent to the primary because a replica failed or was paused after failing.
    pub down_fallbacks: AtomicU64,
    /// The largest distance seen between the position a read needed and a replica's, in bytes of WAL.
    pub max_lag_bytes: AtomicU64,
}

struct Node {
    database: ServerDatabase,
    skip_until: Mutex<Option<Instant>>,
}

/// Which of this adapter's writes the read target covers.
#[derive(Default)]
struct WriteClock {
    /// Writes counted when `target` was taken.
    covered: u64,
    /// The primary's WAL position then.
    target: u64,
}

pub struct Replicas {
    nodes: Vec<Node>,
    next: AtomicUsize,
    /// Writes (calls and commits) this adapter finished on the primary.
    writes: AtomicU64,
    clock: Mutex<WriteClock>,
    pub counters: RoutingCounters,
}

impl Replicas {
    pub(crate) fn new(databases: Vec<ServerDatabase>) -> Self {
        Replicas {
            nodes: databases
                .into_iter()
                .map(|database| Node {
                    database,
                    skip_until: Mutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            clock: Mutex::new(WriteClock::default()),
            counters: RoutingCounters::default(),
        }
    }

    /// A write finished on the primary (a call or a COMMIT): later reads must see it.
    pub(crate) fn note_write(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs one call outside a transaction: a read on a replica that has caught up, else
    /// on `primary`; a write (or any call with `primary_only`) on `primary`.
    pub(crate) async fn call(
        &self,
        primary: &ServerDatabase,
        plan: &Plan,
        primary_only: bool,
    ) -> Result<Outcome> {
        if plan.writes || primary_only {
            return self.on_primary(primary, plan).await;
        }
        let target = match self.read_target(primary).await {
            Ok(target) => target,
            Err(_) => return self.on_primary(primary, plan).await,
        };
        let count = self.nodes.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut lagged = false;
        for i in 0..count {
            let node = &self.nodes[(first + i) % count];
            if node
                .skip_until
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|until| Instant::now() < until)
            {
                continue;
            }
            let attempt = async {
                let backend = tokio::time::timeout(ACQUIRE_WAIT, node.database.pool())
                    .await
                    .map_err(|_| ())?
                    .map_err(|_| ())?;
                backend
                    .call_replica(plan, target, CATCH_UP_WAIT)
                    .await
                    .map_err(|_| ())
            };
            match attempt.await {
                Ok(Ok(outcome)) => {
                    self.counters.replica_reads.fetch_add(1, Ordering::Relaxed);
                    return Ok(outcome);
                }
                Ok(Err(replayed)) => {
                    lagged = true;
                    self.counters
                        .max_lag_bytes
                        .fetch_max(target.saturating_sub(replayed), Ordering::Relaxed);
                    node.pause(LAG_PAUSE);
                }
                Err(()) => node.pause(DOWN_PAUSE),
            }
        }
        let fallbacks = match lagged {
            true => &self.counters.lag_fallbacks,
            false => &self.counters.down_fallbacks,
        };
        fallbacks.fetch_add(1, Ordering::Relaxed);
        self.on_primary(primary, plan).await
    }

    async fn on_primary(&self, primary: &ServerDatabase, plan: &Plan) -> Result<Outcome> {
        self.counters.primary_calls.fetch_add(1, Ordering::Relaxed);
        let result = primary.pool().await?.call(plan).await;
        if plan.writes {
            // Also after a failed write: it may have committed before the failure.
            self.note_write();
        }
        result
    }

    /// The WAL position a replica must have replayed to serve this adapter's reads: the
    /// primary's, taken after its last finished write (0 before any).
    async fn read_target(&self, primary: &ServerDatabase) -> Result<u64> {
        let writes = self.writes.load(Ordering::Acquire);
        {
            let clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
            if clock.covered >= writes {
                return Ok(clock.target);
            }
        }
        let position = primary.pool().await?.wal_position().await?;
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        clock.covered = clock.covered.max(writes);
        clock.target = clock.target.max(position);
        Ok(clock.target)
    }

    pub(crate) fn close(&self) {
        for node in &self.nodes {
            node.database.close();
        }
    }
}

impl Node {
    fn pause(&self, pause: Duration) {
        *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + pause);
    }
}
