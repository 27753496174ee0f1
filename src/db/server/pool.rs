//! A connection pool without sqlx's release-time ping: sqlx 0.8 pings every connection
//! it takes back (a round trip to the server, or a hop to SQLite's worker thread, on every
//! call). Here a connection goes back as it is, unless the call found it broken or left it
//! mid-transaction (`Pooled::discard`). At most `size` connections exist; waiting longer
//! than `acquire_timeout` for one is `sqlx::Error::PoolTimedOut` (P2024).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::observe::PoolStats;

type Connect<C> =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<C, sqlx::Error>> + Send>> + Send + Sync>;

struct Shared<C> {
    idle: Mutex<Vec<C>>,
    permits: Arc<Semaphore>,
    open: AtomicUsize,
    closed: AtomicBool,
    size: usize,
    /// Acquires waiting for a permit (none was free when they asked).
    waiting: AtomicUsize,
}

/// Counts an acquire as waiting until it has a permit or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) struct Pool<C> {
    shared: Arc<Shared<C>>,
    connect: Connect<C>,
    acquire_timeout: Duration,
}

impl<C: Send + 'static> Pool<C> {
    pub(super) fn new<F, Fut>(size: u32, acquire_timeout: Duration, connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, sqlx::Error>> + Send + 'static,
    {
        Pool {
            shared: Arc::new(Shared {
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(size.max(1) as usize)),
                open: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                size: size.max(1) as usize,
                waiting: AtomicUsize::new(0),
            }),
            connect: Box::new(move || Box::pin(connect())),
            acquire_timeout,
        }
    }

    /// How many connections are open (idle or in use).
    pub(super) fn open(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    pub(super) async fn acquire(&self) -> Result<Pooled<C>, sqlx::Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let permit = match Arc::clone(&self.shared.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = Waiting::new(&self.shared.waiting);
                tokio::time::timeout(
                    self.acquire_timeout,
                    Arc::clone(&self.shared.permits).acquire_owned(),
                )
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(|_| sqlx::Error::PoolClosed)?
            }
        };
        let idle = self.shared.idle.lock().expect("pool lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = tokio::time::timeout(self.acquire_timeout, (self.connect)())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
                self.shared.open.fetch_add(1, Ordering::AcqRel);
                conn
            }
        };
        Ok(Pooled {
            conn: Some(conn),
            shared: Arc::clone(&self.shared),
            discard: false,
            _permit: permit,
        })
    }

    pub(super) fn stats(&self) -> PoolStats {
        PoolStats::Server {
            size: self.shared.size,
            open: self.open(),
            idle: self.shared.idle.lock().expect("pool lock").len(),
            waiting: self.shared.waiting.load(Ordering::Relaxed),
        }
    }

    /// Closes the idle connections; those in use close when they come back.
    pub(super) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.permits.close();
        let idle = std::mem::take(&mut *self.shared.idle.lock().expect("pool lock"));
        self.shared.open.fetch_sub(idle.len(), Ordering::AcqRel);
    }
}

/// A connection on loan; it returns to the pool when dropped.
pub(super) struct Pooled<C> {
    conn: Option<C>,
    shared: Arc<Shared<C>>,
    discard: bool,
    _permit: OwnedSemaphorePermit,
}

impl<C> Pooled<C> {
    /// Keeps this connection out of the pool (broken, or state unknown).
    pub(super) fn discard(&mut self) {
        self.discard = true;
    }
}

impl<C> std::ops::Deref for Pooled<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl<C> std::ops::DerefMut for Pooled<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl<C> Drop for Pooled<C> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.discard || self.shared.closed.load(Ordering::Acquire) {
            self.shared.open.fetch_sub(1, Ordering::AcqRel);
            drop(conn);
        } else {
            self.shared.idle.lock().expect("pool lock").push(conn);
        }
    }
}
