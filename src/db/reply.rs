//! Where a call's result goes: a JS promise (`completion.rs`), or a task awaiting it.

use crate::error::{KavachError, Result};
use crate::observe::StatementLog;

use super::interpreter::Outcome;

/// Where a call's result goes: a JS promise, or a task awaiting it.
pub trait Deliver: Send {
    /// Hands the result over; false when nobody takes it any more.
    fn deliver(self: Box<Self>, result: Result<Outcome>) -> bool;

    /// Has the receiver stopped waiting?
    fn abandoned(&self) -> bool {
        false
    }

    /// Where the call's statements are to be recorded, if its caller listens.
    fn statement_log(&self) -> Option<StatementLog> {
        None
    }
}

pub type Reply = Box<dyn Deliver>;

/// A reply a task awaits.
pub struct Waiter(pub tokio::sync::oneshot::Sender<Result<Outcome>>);

impl Deliver for Waiter {
    fn deliver(self: Box<Self>, result: Result<Outcome>) -> bool {
        self.0.send(result).is_ok()
    }

    fn abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// A reply nobody waits for.
pub struct Unanswered;

impl Deliver for Unanswered {
    fn deliver(self: Box<Self>, _result: Result<Outcome>) -> bool {
        true
    }
}

/// What calls on a closed adapter fail with.
pub fn closed_error() -> KavachError {
    KavachError::database(
        "This adapter was closed with close(); create a new one with createAdapter().",
    )
}
