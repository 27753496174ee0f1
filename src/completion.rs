//! Settling promises from other threads in batches. Each adapter owns one threadsafe
//! function; a finished call queues its result and wakes the JS thread only when the
//! queue was empty, so under load one wake-up settles every call that finished in the
//! meantime. (napi-rs's `spawn_future` creates, and later tears down, a threadsafe
//! function — and with it a libuv handle — for every single call.)

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use napi::sys;

use crate::db::{Deliver, Outcome};
use crate::error::KavachError;
use crate::js::{Builders, ErrorFactory, RowFactories};
use crate::observe::{CallMetrics, Meter, StatementLog};

struct Deferred(sys::napi_deferred);

// A deferred is only ever settled on its own JS thread (in `settle_batch`); other threads
// merely carry it there.
unsafe impl Send for Deferred {}

struct Queue {
    settled: Vec<(Deferred, Result<Outcome, KavachError>)>,
    /// A wake-up of the JS thread is on its way.
    armed: bool,
    /// The environment is being torn down (worker terminated): nothing can be settled.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    builders: Builders,
    tsfn: AtomicPtr<sys::napi_threadsafe_function__>,
    /// Promises handed out and not yet settled; only touched on the JS thread. While it
    /// is non-zero the threadsafe function keeps the event loop alive.
    in_flight: AtomicUsize,
}

/// Settles an adapter's promises on the JS thread that created them.
pub struct Completer {
    shared: Arc<Shared>,
    /// Calls, errors and latency of the adapter's calls (its transactions' too).
    pub metrics: CallMetrics,
}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    match status {
        sys::Status::napi_ok => Ok(()),
        _ => Err(napi::Error::from_reason(format!(
            "N-API call failed: {what}"
        ))),
    }
}

impl Completer {
    /// Creates the threadsafe function on `env`'s thread; it does not keep the event
    /// loop alive until a promise is pending.
    pub fn new(
        env: sys::napi_env,
        factories: &RowFactories,
        errors: Option<&ErrorFactory>,
    ) -> napi::Result<Arc<Completer>> {
        let shared = Arc::new(Shared {
            builders: unsafe { Builders::new(env, factories, errors)? },
            queue: Mutex::new(Queue {
                settled: Vec::new(),
                armed: false,
                closed: false,
            }),
            tsfn: AtomicPtr::new(ptr::null_mut()),
            in_flight: AtomicUsize::new(0),
        });
        // One strong count owned by the threadsafe function; `finalize` gives it back.
        let context = Arc::into_raw(Arc::clone(&shared)) as *mut c_void;
        unsafe {
            let mut name = ptr::null_mut();
            check(
                sys::napi_create_string_utf8(env, c"kavach-native".as_ptr(), 13, &mut name),
                "resource name",
            )?;
            let mut tsfn = ptr::null_mut();
            let created = sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                context,
                Some(finalize),
                context,
                Some(settle_batch),
                &mut tsfn,
            );
            if let Err(err) = check(created, "create threadsafe function") {
                drop(Arc::from_raw(context as *const Shared));
                return Err(err);
            }
            shared.tsfn.store(tsfn, Ordering::Release);
            check(sys::napi_unref_threadsafe_function(env, tsfn), "unref")?;
            // Runs before Node tears the threadsafe function down (cleanup hooks run in
            // reverse order of registration), so no thread calls into a freed one.
            check(
                sys::napi_add_env_cleanup_hook(env, Some(env_teardown), context),
                "cleanup hook",
            )?;
        }
        Ok(Arc::new(Completer {
            shared,
            metrics: CallMetrics::default(),
        }))
    }

    /// A new promise (on the JS thread) and the reply that settles it from any thread.
    pub fn promise(
        self: &Arc<Self>,
        env: sys::napi_env,
    ) -> napi::Result<(JsReply, sys::napi_value)> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        unsafe {
            check(
                sys::napi_create_promise(env, &mut deferred, &mut promise),
                "create promise",
            )?;
            if self.shared.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
                let tsfn = self.shared.tsfn.load(Ordering::Acquire);
                sys::napi_ref_threadsafe_function(env, tsfn);
            }
        }
        let reply = JsReply {
            completer: Arc::clone(self),
            deferred: Some(Deferred(deferred)),
            method: None,
            meter: None,
            log: None,
        };
        Ok((reply, promise))
    }

    fn complete(&self, deferred: Deferred, result: Result<Outcome, KavachError>) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed {
            return;
        }
        queue.settled.push((deferred, result));
        if !queue.armed {
            queue.armed = true;
            // Called with the queue locked: teardown marks `closed` under the same lock
            // before the threadsafe function is freed.
            let tsfn = self.shared.tsfn.load(Ordering::Acquire);
            let status = unsafe {
                sys::napi_call_threadsafe_function(
                    tsfn,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
            if status != sys::Status::napi_ok {
                queue.closed = true;
                queue.settled.clear();
            }
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        let queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if !queue.closed {
            let tsfn = self.shared.tsfn.load(Ordering::Acquire);
            unsafe {
                sys::napi_release_threadsafe_function(
                    tsfn,
                    sys::ThreadsafeFunctionReleaseMode::release,
                );
            }
        }
    }
}

/// Settles everything queued so far, on the JS thread.
unsafe extern "C" fn settle_batch(
    env: sys::napi_env,
    _callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    let shared = &*(context as *const Shared);
    if env.is_null() {
        return;
    }
    let batch = {
        let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.armed = false;
        let capacity = queue.settled.capacity();
        std::mem::replace(&mut queue.settled, Vec::with_capacity(capacity))
    };
    let count = batch.len();
    for (deferred, result) in batch {
        let mut scope = ptr::null_mut();
        sys::napi_open_handle_scope(env, &mut scope);
        // A panic must not unwind into Node (it would abort the process): the promise is
        // rejected instead, and the rest of the batch is settled as usual.
        let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::js::settle(env, deferred.0, result, &shared.builders)
        }));
        if let Err(panic) = settled {
            let error = Err(KavachError::internal(panic.as_ref()));
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::js::settle(env, deferred.0, error, &shared.builders)
            }));
        }
        sys::napi_close_handle_scope(env, scope);
    }
    if count > 0 && shared.in_flight.fetch_sub(count, Ordering::Relaxed) == count {
        sys::napi_unref_threadsafe_function(env, shared.tsfn.load(Ordering::Acquire));
    }
}

unsafe extern "C" fn env_teardown(context: *mut c_void) {
    let shared = &*(context as *const Shared);
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    queue.closed = true;
    queue.settled.clear();
}

unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let shared = Arc::from_raw(data as *const Shared);
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    if !queue.closed && !env.is_null() {
        sys::napi_remove_env_cleanup_hook(env, Some(env_teardown), data);
        shared.builders.delete(env);
    }
    queue.closed = true;
    queue.settled.clear();
}

/// Settles one promise; dropped unsent (a call that could not run), it rejects.
pub struct JsReply {
    completer: Arc<Completer>,
    deferred: Option<Deferred>,
    /// The adapter method the promise answers for: its errors name it.
    method: Option<&'static str>,
    /// Times the call for `metrics()`.
    meter: Option<Meter>,
    /// Where the call's statements are recorded, when its caller listens.
    log: Option<StatementLog>,
}

impl JsReply {
    /// The reply to a call of `method`, timed by `meter`; its statements go to `log`.
    pub fn for_call(
        mut self,
        method: &'static str,
        meter: Meter,
        log: Option<StatementLog>,
    ) -> Self {
        self.method = Some(method);
        self.meter = Some(meter);
        self.log = log;
        self
    }
}

impl Deliver for JsReply {
    fn statement_log(&self) -> Option<StatementLog> {
        self.log.clone()
    }

    fn deliver(mut self: Box<Self>, result: Result<Outcome, KavachError>) -> bool {
        if let Some(meter) = self.meter.take() {
            meter.finish(&self.completer.metrics, &result);
        }
        if let Some(deferred) = self.deferred.take() {
            let result = match (result, self.method) {
                (Err(err), Some(method)) => Err(err.in_method(method)),
                (result, _) => result,
            };
            self.completer.complete(deferred, result);
        }
        true
    }
}

impl Drop for JsReply {
    fn drop(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            self.completer.complete(
                deferred,
                Err(KavachError::database(
                    "The call was abandoned: the adapter's database thread stopped.",
                )),
            );
        }
    }
}
