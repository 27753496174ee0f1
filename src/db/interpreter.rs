//! Running a [`Plan`] against anything that can run statements: the shape of Prisma's own
//! query interpreter, where a plan is data and the thing that runs it (its `SqlQueryable`)
//! has just `queryRaw` and `executeRaw`. Here that is [`Queryable`]; a SQLite handle on
//! its executor thread, a PostgreSQL or MySQL connection, and a Prisma client (through
//! its raw-query methods) each implement it, and nothing in this file knows which.

use std::future::Future;

use crate::error::{KavachError, Result};
use crate::methods::Returns;
use crate::observe::{Started, StatementLog};
use crate::plan::{Expect, Plan, Statement};
use crate::schema::Model;
use crate::value::Value;

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

/// Runs planned statements: rows out (decoded with `decode::record`), or a count.
/// `model` is the model the statement reads or writes, for decoding and for naming it
/// in errors (a unique violation's fields).
pub trait Queryable {
    /// Runs a statement whose columns are `model`'s fields in declaration order.
    fn query(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send;

    /// Runs a write; resolves with how many rows it affected.
    fn execute(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// A queryable that is a connection of its own, so it can open and end a transaction
/// with plain SQL (BEGIN, COMMIT, ROLLBACK, SAVEPOINT ...).
pub trait Connection: Queryable {
    /// Runs SQL text without parameters.
    fn raw(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A queryable whose statements are recorded in a log (a plan's `log`: a caller listens).
struct Logged<'a, Q> {
    inner: &'a mut Q,
    log: &'a StatementLog,
}

impl<Q: Queryable + Send> Queryable for Logged<'_, Q> {
    async fn query(&mut self, statement: &Statement, model: &'static Model) -> Result<Vec<Record>> {
        let started = Started::now();
        let result = self.inner.query(statement, model).await;
        let rows: fn(&Vec<Record>) -> u64 = |rows| rows.len() as u64;
        let logged = Some((statement, model));
        (self.log).record(started, logged, &statement.sql, &result, Some(rows), true);
        result
    }

    async fn execute(&mut self, statement: &Statement, model: &'static Model) -> Result<u64> {
        let started = Started::now();
        let result = self.inner.execute(statement, model).await;
        let affected: fn(&u64) -> u64 = |n| *n;
        let logged = Some((statement, model));
        (self.log).record(
            started,
            logged,
            &statement.sql,
            &result,
            Some(affected),
            false,
        );
        result
    }
}

impl<Q: Connection + Send> Connection for Logged<'_, Q> {
    async fn raw(&mut self, sql: &str) -> Result<()> {
        let started = Started::now();
        let result = self.inner.raw(sql).await;
        self.log.record(started, None, sql, &result, None, false);
        result
    }
}

/// Runs `plan` where its statements may run one by one: in a transaction already open,
/// or when the plan is a single statement.
pub async fn run_plan(q: &mut (impl Queryable + Send), plan: &Plan) -> Result<Outcome> {
    match &plan.log {
        Some(log) => run_statements(&mut Logged { inner: q, log }, plan).await,
        None => run_statements(q, plan).await,
    }
}

async fn run_statements(q: &mut impl Queryable, plan: &Plan) -> Result<Outcome> {
    let model = plan.model;
    if let Some(write) = &plan.before {
        let affected = q.execute(write, model).await?;
        if let (Expect::AfterWrite { missing }, 0) = (plan.expect, affected) {
            return match missing {
                Some(operation) => Err(KavachError::record_not_found(&model.name, operation)),
                None => Ok(Outcome::Null),
            };
        }
    }
    match plan.expect {
        Expect::Affected { returns } => {
            let affected = q.execute(&plan.statement, model).await?;
            Ok(match returns {
                Returns::Count => Outcome::Count(affected),
                _ => Outcome::Nothing,
            })
        }
        Expect::AffectedOne { operation } => {
            let affected = q.execute(&plan.statement, model).await?;
            if affected == 0 {
                return Err(KavachError::record_not_found(&model.name, operation));
            }
            Ok(Outcome::Nothing)
        }
        Expect::Optional | Expect::One { .. } | Expect::AfterWrite { .. } => {
            let mut rows = q.query(&plan.statement, model).await?;
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
        Expect::Many => Ok(Outcome::Records(q.query(&plan.statement, model).await?)),
        Expect::Inserted => {
            q.execute(&plan.statement, model).await?;
            let cells = plan.inserted.clone().unwrap_or_default();
            Ok(Outcome::Record(Record { model, cells }))
        }
    }
}

/// Outside a transaction, a write followed by its read-back (MySQL has no RETURNING)
/// runs in its own transaction: the write's row lock keeps others out until the row is
/// read, so the caller sees exactly what its write produced.
pub async fn run_atomically(conn: &mut (impl Connection + Send), plan: &Plan) -> Result<Outcome> {
    match &plan.log {
        Some(log) => atomically(&mut Logged { inner: conn, log }, plan).await,
        None => atomically(conn, plan).await,
    }
}

async fn atomically(conn: &mut impl Connection, plan: &Plan) -> Result<Outcome> {
    if !plan.is_compound() {
        return run_statements(conn, plan).await;
    }
    conn.raw("BEGIN").await?;
    let result = run_statements(conn, plan).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    match conn.raw(end).await {
        Ok(()) => result,
        Err(err) => result.and(Err(err)),
    }
}

/// Polls a future that never waits (a [`Queryable`] whose statements run synchronously,
/// as SQLite's do on their executor thread) to its end.
pub fn complete_now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("the statements run synchronously"),
    }
}
