//! Running through the app's own Prisma client (`createAdapter(prisma)`,
//! `createAdapter(tx)`): the same plans and the same decoding as over sqlx, with every
//! statement run by the client's `$queryRawUnsafe` / `$executeRawUnsafe` — on a
//! transaction client, in the app's own transaction.
//!
//! The interpreter (`db::interpreter::run_plan`) runs against [`ClientQueryable`],
//! whose statements JS answers: a call is a future driven step by step from the JS
//! thread, with no other thread involved. `start` plans the call and runs the
//! interpreter until it asks for its first statement, handed to `index.js` as a step;
//! `index.js` runs it on the client and hands the result to `resume` (rows are decoded
//! here, by `db::decode`, exactly as rows from sqlx), or the client's error to `fail`;
//! each answers with the next step or the call's outcome.

use std::cell::{Cell as Counter, RefCell};
use std::collections::HashMap;
use std::ffi::CString;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use napi::bindgen_prelude::{ObjectFinalize, Unknown};
use napi::{sys, Env, JsValue as _, Status};
use napi_derive::napi;

use crate::db::decode::{self, DateFormats, StoredDate};
use crate::db::interpreter::{run_plan, Outcome, Queryable, Record};
use crate::dialect::{Channel, Dialect};
use crate::error::{map_database_error, ErrorContext, KavachError, Result};
use crate::js::{self, check, Builders, ErrorFactory, JsArgs, RowFactories};
use crate::methods::METHODS;
use crate::observe::{self, CallMetrics, Meter, PoolStats, StatementLog};
use crate::plan::{fold_keys, plan_fold, plan_for, Bound, Expect, Statement, FOLD_TAG};
use crate::schema::{Field, Model, ScalarType, SCHEMA};
use crate::value::{TimestampFormat, Value};
use crate::JsStatementLog;

/// A statement the interpreter waits on.
struct Request {
    statement: Statement,
    model: &'static Model,
    /// Does it return rows (`$queryRawUnsafe`) or a count (`$executeRawUnsafe`)?
    rows: bool,
}

enum Answer {
    Rows(Vec<Record>),
    Count(u64),
}

/// Where the interpreter leaves its request and JS its answer.
#[derive(Default)]
struct Exchange {
    asked: Option<Request>,
    answer: Option<Result<Answer>>,
}

/// The [`Queryable`] of a call through a Prisma client: each statement waits until JS
/// has run it.
struct ClientQueryable {
    exchange: Arc<Mutex<Exchange>>,
}

/// Waits for the answer to one request.
struct Ask {
    exchange: Arc<Mutex<Exchange>>,
    request: Option<Request>,
}

impl Future for Ask {
    type Output = Result<Answer>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<Answer>> {
        let request = self.request.take();
        let mut exchange = self.exchange.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(request) = request {
            exchange.asked = Some(request);
            return Poll::Pending;
        }
        match exchange.answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => Poll::Pending,
        }
    }
}

impl ClientQueryable {
    fn ask(&self, statement: &Statement, model: &'static Model, rows: bool) -> Ask {
        Ask {
            exchange: Arc::clone(&self.exchange),
            request: Some(Request {
                statement: statement.clone(),
                model,
                rows,
            }),
        }
    }
}

impl Queryable for ClientQueryable {
    fn query(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send {
        let ask = self.ask(statement, model, true);
        async move {
            match ask.await? {
                Answer::Rows(rows) => Ok(rows),
                Answer::Count(_) => Err(KavachError::database("a query was answered with a count")),
            }
        }
    }

    fn execute(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> impl Future<Output = Result<u64>> + Send {
        let ask = self.ask(statement, model, false);
        async move {
            match ask.await? {
                Answer::Count(count) => Ok(count),
                Answer::Rows(_) => Err(KavachError::database("a write was answered with rows")),
            }
        }
    }
}

/// A call in progress.
struct Call {
    future: Pin<Box<dyn Future<Output = Result<Outcome>>>>,
    exchange: Arc<Mutex<Exchange>>,
    /// The statement JS is running for it.
    running: Option<Request>,
    /// A read that may be folded with others of its method: the method's index and the
    /// call's key values (`plan::fold_keys`).
    fold: Option<(u32, Vec<(usize, Value)>)>,
    /// The adapter method called: its errors name it, as over sqlx.
    method: &'static str,
    /// Times it for `metrics()`.
    meter: Option<Meter>,
}

#[napi(object, object_to_js = false)]
pub struct ClientOptions {
    /// SQLite: how DateTime columns hold dates: 'iso8601' (Prisma 7's default),
    /// 'unixepoch-ms' or 'unixepoch-s'.
    pub timestamp_format: Option<String>,
}

/// Plans and decodes calls whose statements a Prisma client runs (see the module docs).
#[napi(custom_finalize)]
pub struct ClientBridge {
    dialect: Dialect,
    formats: Arc<DateFormats>,
    builders: Builders,
    /// `(id, sql, params, rows, then, foldable) => step`, from index.js.
    steps: sys::napi_ref,
    calls: RefCell<HashMap<u32, Call>>,
    /// Folded reads in flight: the calls each one answers, in the order of its branches.
    folds: RefCell<HashMap<u32, Vec<u32>>>,
    /// Per model (by position), an array of its column names as JS strings, the keys of
    /// the row objects the client returns: made once, so each lookup is of the same string
    /// (held in an array, as Node 20 references objects only).
    keys: RefCell<Vec<Option<sys::napi_ref>>>,
    next_id: Counter<u32>,
    metrics: CallMetrics,
}

impl ObjectFinalize for ClientBridge {
    fn finalize(self, env: Env) -> napi::Result<()> {
        unsafe {
            self.builders.delete(env.raw());
            sys::napi_delete_reference(env.raw(), self.steps);
            for &keys in self.keys.borrow().iter().flatten() {
                sys::napi_delete_reference(env.raw(), keys);
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message)
}

#[napi]
impl ClientBridge {
    /// `provider` is the client's `_activeProvider`.
    #[napi(
        constructor,
        ts_args_type = "provider: string, options: ClientOptions | undefined | null, rowFactories: Array<(...values: unknown[]) => object>, errorFactory: (name: string, code: string | undefined, message: string, meta: object | undefined, cause: unknown) => Error, stepFactory: (id: number, sql: string, params: unknown[], rows: boolean, then: [string, unknown[]] | null, foldable: number) => object"
    )]
    pub fn new(
        env: Env,
        provider: String,
        options: Option<ClientOptions>,
        row_factories: RowFactories,
        error_factory: ErrorFactory,
        step_factory: Unknown,
    ) -> napi::Result<Self> {
        let dialect = Dialect::from_provider(&provider).ok_or_else(|| {
            invalid(format!(
                "createAdapter: the Prisma client's provider is '{provider}'; kavach-native runs on sqlite, postgresql and mysql"
            ))
        })?;
        let format = match options.and_then(|o| o.timestamp_format) {
            None => TimestampFormat::Iso8601,
            Some(name) => TimestampFormat::parse(&name).ok_or_else(|| {
                invalid(format!("createAdapter: timestampFormat '{name}' is not one of 'iso8601', 'unixepoch-ms', 'unixepoch-s'"))
            })?,
        };
        let env = env.raw();
        let builders = unsafe { Builders::new(env, &row_factories, Some(&error_factory))? };
        let mut steps = ptr::null_mut();
        unsafe {
            check(
                sys::napi_create_reference(env, step_factory.raw(), 1, &mut steps),
                "step factory",
            )?;
        }
        Ok(ClientBridge {
            dialect,
            formats: Arc::new(DateFormats::uniform(format)),
            builders,
            steps,
            calls: RefCell::new(HashMap::new()),
            folds: RefCell::new(HashMap::new()),
            keys: RefCell::new(vec![None; SCHEMA.models.len()]),
            next_id: Counter::new(1),
            metrics: CallMetrics::default(),
        })
    }

    /// `start`, recording the call's statements in `log` (never folded with others, so
    /// each is its own).
    #[napi(
        ts_args_type = "methodIndex: number, args: unknown[], log: StatementLog",
        ts_return_type = "unknown"
    )]
    pub fn start_logged<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
        log: &JsStatementLog,
    ) -> napi::Result<Unknown<'env>> {
        self.start_call(env, method_index, args, Some(log.log()))
    }

    /// Calls, errors and latency by method, as `NativeAdapter.metrics()` (the pool is the
    /// client's own).
    #[napi]
    pub fn metrics(&self) -> String {
        observe::snapshot(self.dialect.provider(), &self.metrics, PoolStats::None).to_string()
    }

    /// Plans a call: resolves to its first step, or to an `Error` (invalid arguments),
    /// which the caller throws.
    #[napi(
        ts_args_type = "methodIndex: number, args: unknown[]",
        ts_return_type = "unknown"
    )]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
    ) -> napi::Result<Unknown<'env>> {
        self.start_call(env, method_index, args, None)
    }

    /// Hands back what the client returned for a step: its rows, or its count.
    #[napi(
        ts_args_type = "id: number, result: unknown",
        ts_return_type = "unknown"
    )]
    pub fn resume<'env>(
        &self,
        env: &'env Env,
        id: u32,
        result: Unknown,
    ) -> napi::Result<Unknown<'env>> {
        let env = env.raw();
        let Some(mut call) = self.take(id) else {
            return self.finished(env, Err(unknown_call(id)), None);
        };
        let Some(request) = call.running.take() else {
            return self.finished(env, Err(unknown_call(id)), None);
        };
        let answer = unsafe {
            match request.rows {
                true => self
                    .rows(env, result.raw(), request.model)
                    .map(Answer::Rows),
                false => count(env, result.raw()).map(Answer::Count),
            }
        };
        lock(&call.exchange).answer = Some(answer);
        self.drive(env, id, call, None, None)
    }

    /// Hands back the error a database failure of a step made the client throw: its
    /// database code and message (the driver adapter's `originalCode` / `originalMessage`,
    /// or the Rust engine's `meta.code` / `meta.message`), its kind (`UniqueConstraintViolation`
    /// ...), and the error itself, whose class the call's error is made of.
    #[napi(
        ts_args_type = "id: number, code: string | undefined | null, message: string, kind: string | undefined | null, cause: unknown",
        ts_return_type = "unknown"
    )]
    pub fn fail<'env>(
        &self,
        env: &'env Env,
        id: u32,
        code: Option<String>,
        message: String,
        kind: Option<String>,
        cause: Unknown,
    ) -> napi::Result<Unknown<'env>> {
        let env = env.raw();
        let Some(mut call) = self.take(id) else {
            return self.finished(env, Err(unknown_call(id)), None);
        };
        let Some(request) = call.running.take() else {
            return self.finished(env, Err(unknown_call(id)), None);
        };
        let err = client_error(code.as_deref(), &message, kind.as_deref(), request.model);
        lock(&call.exchange).answer = Some(Err(err));
        self.drive(env, id, call, None, Some(cause.raw()))
    }

    /// Folds the pending first steps `ids` (reads of one method, each of at most one row by
    /// its keys, not yet run) into one statement (`plan::plan_fold`), so that concurrent reads
    /// cost one round trip, as Prisma's folded `findUnique` calls do; raw queries are never
    /// folded by Prisma. Answered by `resumeFold` (or given up with `unfold`).
    #[napi(ts_args_type = "ids: number[]", ts_return_type = "unknown")]
    pub fn fold<'env>(&self, env: &'env Env, ids: Vec<u32>) -> napi::Result<Unknown<'env>> {
        let env = env.raw();
        let mut keys = Vec::with_capacity(ids.len());
        let mut method = None;
        {
            let calls = self.calls.borrow();
            for id in &ids {
                let (index, call_keys) = calls
                    .get(id)
                    .filter(|call| call.running.is_some())
                    .and_then(|call| call.fold.as_ref())
                    .filter(|(index, _)| method.is_none_or(|m| m == *index))
                    .ok_or_else(|| {
                        napi::Error::from_reason(format!("call {id} cannot be folded"))
                    })?;
                method = Some(*index);
                keys.push(call_keys.clone());
            }
        }
        let Some(method) = method.map(|index| &METHODS[index as usize]) else {
            return Err(napi::Error::from_reason("nothing to fold"));
        };
        let request = Request {
            statement: plan_fold(method, &keys, self.dialect, Channel::PrismaClient),
            model: SCHEMA.model(method.model),
            rows: true,
        };
        let id = self.new_id();
        let step = unsafe { self.step(env, id, &request, None)? };
        self.folds.borrow_mut().insert(id, ids);
        Ok(unsafe { Unknown::from_raw_unchecked(env, step) })
    }

    /// Hands back the rows of a folded statement: answers each folded call with its own
    /// rows and resolves with what each then is (its outcome, its error, or its next step),
    /// in the order of `fold`'s ids.
    #[napi(
        ts_args_type = "id: number, rows: unknown",
        ts_return_type = "unknown[]"
    )]
    pub fn resume_fold<'env>(
        &self,
        env: &'env Env,
        id: u32,
        rows: Unknown,
    ) -> napi::Result<Unknown<'env>> {
        let env = env.raw();
        let ids =
            self.folds.borrow_mut().remove(&id).ok_or_else(|| {
                napi::Error::from_reason(format!("no folded read {id} is waiting"))
            })?;
        let model = self
            .calls
            .borrow()
            .get(&ids[0])
            .and_then(|call| call.running.as_ref())
            .map(|r| r.model)
            .ok_or_else(|| napi::Error::from_reason("a folded call is gone"))?;
        let decoded = unsafe { self.tagged_rows(env, rows.raw(), model, ids.len()) };
        let mut results = Vec::with_capacity(ids.len());
        let mut groups = match decoded {
            Ok(groups) => groups.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(err) => vec![Err(err); ids.len()],
        };
        for (place, call_id) in ids.iter().enumerate() {
            let rows = std::mem::replace(&mut groups[place], Ok(Vec::new()));
            let value = match self.take(*call_id) {
                Some(mut call) => {
                    call.running = None;
                    lock(&call.exchange).answer = Some(rows.map(Answer::Rows));
                    self.drive(env, *call_id, call, None, None)?
                }
                None => self.finished(env, Err(unknown_call(*call_id)), None)?,
            };
            results.push(value.raw());
        }
        let array = unsafe { js::array(env, &results, |&v| Ok(v))? };
        Ok(unsafe { Unknown::from_raw_unchecked(env, array) })
    }

    /// Gives a folded statement up (it failed): its calls wait on their own steps again,
    /// to be run one by one.
    #[napi]
    pub fn unfold(&self, id: u32) {
        self.folds.borrow_mut().remove(&id);
    }

    /// Forgets a call whose step failed in a way that is not the database's (the
    /// transaction closed, the client disconnected): its error goes to the caller as is.
    #[napi(ts_args_type = "id: number, code?: string | undefined | null")]
    pub fn abandon(&self, id: u32, code: Option<String>) {
        if let Some(meter) = self.take(id).and_then(|call| call.meter) {
            meter.finish_as(
                &self.metrics,
                Some(code.unwrap_or_else(|| "PrismaClientError".into())),
            );
        }
    }
}

impl ClientBridge {
    fn start_call<'env>(
        &self,
        env: &'env Env,
        method_index: u32,
        args: JsArgs,
        log: Option<StatementLog>,
    ) -> napi::Result<Unknown<'env>> {
        let env = env.raw();
        let method = match crate::method(method_index) {
            Ok(method) => method,
            Err(err) => return self.finished(env, Err(err), None),
        };
        let meter = Meter::start(method_index as usize);
        let plan = match plan_for(method, &args.0, self.dialect, Channel::PrismaClient) {
            Ok(plan) => plan,
            Err(err) => {
                let result = Err(err.in_method(method.name));
                meter.finish(&self.metrics, &result);
                return self.finished(env, result, None);
            }
        };
        let logged = log.is_some();
        let plan = plan.logged(log);
        // A read of at most one row by its keys can share a statement with other such reads
        // of its method (see `fold`).
        let fold = match plan.expect == Expect::Optional && !plan.is_compound() && !logged {
            true => fold_keys(method, &args.0, self.dialect).map(|keys| (method_index, keys)),
            false => None,
        };
        let first = FirstStep {
            then: plan.is_compound().then(|| plan.statement.clone()),
            foldable: fold.as_ref().map(|(method, _)| *method),
        };
        let exchange = Arc::new(Mutex::new(Exchange::default()));
        let mut queryable = ClientQueryable {
            exchange: Arc::clone(&exchange),
        };
        let future = Box::pin(async move { run_plan(&mut queryable, &plan).await });
        let id = self.new_id();
        let call = Call {
            future,
            exchange,
            running: None,
            fold,
            method: method.name,
            meter: Some(meter),
        };
        self.drive(env, id, call, Some(first), None)
    }
}

fn unknown_call(id: u32) -> KavachError {
    KavachError::database(format!(
        "kavach-native: no call {id} is waiting for a result"
    ))
}

fn lock(exchange: &Mutex<Exchange>) -> std::sync::MutexGuard<'_, Exchange> {
    exchange.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the first step of a call says about the call.
struct FirstStep {
    /// A write whose row is then read back (MySQL): the read-back, atomic with the write
    /// only in a transaction, so both go to the client together.
    then: Option<Statement>,
    /// The method (index) of a read of at most one row that may be folded.
    foldable: Option<u32>,
}

impl ClientBridge {
    fn new_id(&self) -> u32 {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1).max(1));
        id
    }

    fn take(&self, id: u32) -> Option<Call> {
        self.calls.borrow_mut().remove(&id)
    }

    /// Runs the interpreter of call `id` on: to its next statement (answered with a
    /// step) or to its end (answered with the outcome, or the error as a value).
    fn drive<'env>(
        &self,
        env: sys::napi_env,
        id: u32,
        mut call: Call,
        first: Option<FirstStep>,
        cause: Option<sys::napi_value>,
    ) -> napi::Result<Unknown<'env>> {
        let mut context = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(result) = call.future.as_mut().poll(&mut context) {
            let result = result.map_err(|err| err.in_method(call.method));
            if let Some(meter) = call.meter.take() {
                meter.finish(&self.metrics, &result);
            }
            return self.finished(env, result, cause);
        }
        let Some(request) = lock(&call.exchange).asked.take() else {
            let stuck = KavachError::database("kavach-native: a call waits on nothing");
            return self.finished(env, Err(stuck), None);
        };
        let step = unsafe { self.step(env, id, &request, first.as_ref())? };
        call.running = Some(request);
        self.calls.borrow_mut().insert(id, call);
        Ok(unsafe { Unknown::from_raw_unchecked(env, step) })
    }

    /// The call's outcome as its JS value, or its error (made by the error factory).
    fn finished<'env>(
        &self,
        env: sys::napi_env,
        result: Result<Outcome>,
        cause: Option<sys::napi_value>,
    ) -> napi::Result<Unknown<'env>> {
        let value = unsafe {
            match &result {
                Ok(outcome) => js::outcome(env, outcome, &self.builders),
                Err(err) => js::error(env, err, &self.builders, cause),
            }
        };
        let value = match value {
            Ok(value) => value,
            Err(failure) => unsafe {
                let err = KavachError::database(failure.reason);
                js::error(env, &err, &self.builders, None)?
            },
        };
        Ok(unsafe { Unknown::from_raw_unchecked(env, value) })
    }

    unsafe fn step(
        &self,
        env: sys::napi_env,
        id: u32,
        request: &Request,
        first: Option<&FirstStep>,
    ) -> napi::Result<sys::napi_value> {
        let params = js::array(env, &request.statement.params, |bound| {
            self.param(env, bound, request.model)
        })?;
        let then = match first.and_then(|f| f.then.as_ref()) {
            Some(read) => {
                let sql = js::string(env, &read.sql)?;
                let params = js::array(env, &read.params, |b| self.param(env, b, request.model))?;
                js::array(env, &[sql, params], |&v| Ok(v))?
            }
            None => js::null(env)?,
        };
        let arguments = [
            js::number(env, f64::from(id))?,
            js::string(env, &request.statement.sql)?,
            params,
            js::boolean(env, request.rows)?,
            then,
            js::number(env, first.and_then(|f| f.foldable).map_or(-1.0, f64::from))?,
        ];
        let mut factory = ptr::null_mut();
        check(
            sys::napi_get_reference_value(env, self.steps, &mut factory),
            "step factory",
        )?;
        let mut step = ptr::null_mut();
        check(
            sys::napi_call_function(
                env,
                js::undefined(env)?,
                factory,
                arguments.len(),
                arguments.as_ptr(),
                &mut step,
            ),
            "make step",
        )?;
        Ok(step)
    }

    /// A parameter as the client binds it: by its JS type (see NOTES.md, "Running
    /// through a Prisma client"). SQLite dates are written in their column's format, as
    /// over sqlx; servers get a `Date`.
    unsafe fn param(
        &self,
        env: sys::napi_env,
        bound: &Bound,
        model: &Model,
    ) -> napi::Result<sys::napi_value> {
        match &bound.value {
            Value::Null => js::null(env),
            Value::Bool(b) => js::boolean(env, *b),
            Value::Int(n) => js::number(env, *n as f64),
            Value::Text(s) | Value::JsonText(s) => js::string(env, s),
            Value::Json(json) => js::string(env, &json.to_string()),
            Value::DateTime(ms) if self.dialect == Dialect::Sqlite => {
                match self.formats.store(model, bound.field, *ms) {
                    StoredDate::Text(iso) => js::string(env, &iso),
                    StoredDate::Integer(n) => js::number(env, n as f64),
                }
            }
            Value::DateTime(ms) => {
                let mut out = ptr::null_mut();
                check(
                    sys::napi_create_date(env, *ms as f64, &mut out),
                    "create date",
                )?;
                Ok(out)
            }
        }
    }

    /// The rows of `model` the client returned (objects keyed by column name).
    unsafe fn rows(
        &self,
        env: sys::napi_env,
        rows: sys::napi_value,
        model: &'static Model,
    ) -> Result<Vec<Record>> {
        let napi = |e: napi::Error| KavachError::database(e.reason);
        let mut is_array = false;
        check(sys::napi_is_array(env, rows, &mut is_array), "is_array").map_err(napi)?;
        if !is_array {
            return Err(KavachError::database(
                "the Prisma client's $queryRawUnsafe did not return an array of rows",
            ));
        }
        let mut len = 0;
        check(sys::napi_get_array_length(env, rows, &mut len), "rows").map_err(napi)?;
        let keys = self.keys(env, model).map_err(napi)?;
        let mut records = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut row = ptr::null_mut();
            check(sys::napi_get_element(env, rows, i, &mut row), "row").map_err(napi)?;
            records.push(self.record(env, row, model, &keys)?);
        }
        Ok(records)
    }

    /// `model`'s row keys (its column names) as JS strings.
    unsafe fn keys(&self, env: sys::napi_env, model: &Model) -> napi::Result<Vec<sys::napi_value>> {
        let mut cache = self.keys.borrow_mut();
        let array = match cache[model.position] {
            Some(reference) => {
                let mut array = ptr::null_mut();
                check(
                    sys::napi_get_reference_value(env, reference, &mut array),
                    "keys",
                )?;
                array
            }
            None => {
                let array = js::array(env, &model.fields, |f| js::string(env, &f.column))?;
                let mut reference = ptr::null_mut();
                check(
                    sys::napi_create_reference(env, array, 1, &mut reference),
                    "keys reference",
                )?;
                cache[model.position] = Some(reference);
                array
            }
        };
        (0..model.fields.len() as u32)
            .map(|i| {
                let mut key = ptr::null_mut();
                check(sys::napi_get_element(env, array, i, &mut key), "key")?;
                Ok(key)
            })
            .collect()
    }

    /// One row object of `model`.
    unsafe fn record(
        &self,
        env: sys::napi_env,
        row: sys::napi_value,
        model: &'static Model,
        keys: &[sys::napi_value],
    ) -> Result<Record> {
        let napi = |e: napi::Error| KavachError::database(e.reason);
        let mut cells = Vec::with_capacity(model.fields.len());
        for (index, field) in model.fields.iter().enumerate() {
            let mut value = ptr::null_mut();
            check(
                sys::napi_get_property(env, row, keys[index], &mut value),
                "column",
            )
            .map_err(napi)?;
            let cell = read_cell(env, value, model, field)?;
            let format = decode::format_of(model, index, Some(&self.formats));
            cells.push(decode::value(model, field, format, cell)?);
        }
        Ok(Record { model, cells })
    }

    /// The rows of a folded statement, grouped by the read (branch) each answers.
    unsafe fn tagged_rows(
        &self,
        env: sys::napi_env,
        rows: sys::napi_value,
        model: &'static Model,
        branches: usize,
    ) -> Result<Vec<Vec<Record>>> {
        let napi = |e: napi::Error| KavachError::database(e.reason);
        let mut is_array = false;
        check(sys::napi_is_array(env, rows, &mut is_array), "is_array").map_err(napi)?;
        if !is_array {
            return Err(KavachError::database(
                "the Prisma client's $queryRawUnsafe did not return an array of rows",
            ));
        }
        let mut len = 0;
        check(sys::napi_get_array_length(env, rows, &mut len), "rows").map_err(napi)?;
        let tag = CString::new(FOLD_TAG).expect("no NUL");
        let keys = self.keys(env, model).map_err(napi)?;
        let mut groups: Vec<Vec<Record>> = (0..branches).map(|_| Vec::new()).collect();
        for i in 0..len {
            let mut row = ptr::null_mut();
            check(sys::napi_get_element(env, rows, i, &mut row), "row").map_err(napi)?;
            let mut value = ptr::null_mut();
            check(
                sys::napi_get_named_property(env, row, tag.as_ptr(), &mut value),
                "tag",
            )
            .map_err(napi)?;
            let place = match count(env, value) {
                Ok(place) if (place as usize) < branches => place as usize,
                _ => return Err(KavachError::database("a folded row has no valid tag")),
            };
            groups[place].push(self.record(env, row, model, &keys)?);
        }
        Ok(groups)
    }
}

/// One column value as the client typed it, read for `field`: dates arrive as `Date`s
/// (servers) or as the stored text (SQLite: integers as their digits), JSON as its text,
/// booleans as booleans or 0/1, integers as numbers or bigints.
unsafe fn read_cell(
    env: sys::napi_env,
    value: sys::napi_value,
    model: &Model,
    field: &Field,
) -> Result<decode::Cell<'static>> {
    use decode::Cell;
    let bad = |what: &str| decode::decode_error(model, field, what);
    let napi = |e: napi::Error| decode::decode_error(model, field, e.reason);
    let mut ty = 0;
    check(sys::napi_typeof(env, value, &mut ty), "typeof").map_err(napi)?;
    Ok(match ty {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Cell::Null,
        sys::ValueType::napi_boolean => {
            let mut b = false;
            check(sys::napi_get_value_bool(env, value, &mut b), "bool").map_err(napi)?;
            Cell::Bool(b)
        }
        sys::ValueType::napi_number => {
            let mut n = 0.0;
            check(sys::napi_get_value_double(env, value, &mut n), "number").map_err(napi)?;
            number_cell(n)
        }
        sys::ValueType::napi_bigint => {
            let (mut n, mut lossless) = (0i64, false);
            check(
                sys::napi_get_value_bigint_int64(env, value, &mut n, &mut lossless),
                "bigint",
            )
            .map_err(napi)?;
            if !lossless {
                return Err(bad("an integer beyond 64 bits"));
            }
            Cell::Int(n)
        }
        sys::ValueType::napi_string => text_cell(field.ty, read_text(env, value).map_err(napi)?),
        sys::ValueType::napi_object => {
            let mut is_date = false;
            check(sys::napi_is_date(env, value, &mut is_date), "is_date").map_err(napi)?;
            if !is_date {
                return Err(bad("an object (a column read without its text cast?)"));
            }
            let mut ms = 0.0;
            check(sys::napi_get_date_value(env, value, &mut ms), "date").map_err(napi)?;
            if !ms.is_finite() {
                return Err(bad("an invalid Date"));
            }
            Cell::DateTime(ms as i64)
        }
        _ => return Err(bad("a value of an unexpected JS type")),
    })
}

fn number_cell<'t>(n: f64) -> decode::Cell<'t> {
    if n.fract() == 0.0 && n.abs() < 9.2e18 {
        decode::Cell::Int(n as i64)
    } else {
        decode::Cell::Real(n)
    }
}

/// Text the client returned. SQLite dates and JSON come as the text of whatever the
/// column stores: an integer or real date is its digits, as over sqlx it would be its
/// storage class. A server may hand a big integer over as text.
fn text_cell(ty: ScalarType, text: String) -> decode::Cell<'static> {
    let numeric = text
        .as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_digit() || *c == b'-' || *c == b'.');
    match ty {
        ScalarType::DateTime | ScalarType::Int | ScalarType::Boolean if numeric => {
            if let Ok(n) = text.parse::<i64>() {
                return decode::Cell::Int(n);
            }
            if let Ok(r) = text.parse::<f64>() {
                return decode::Cell::Real(r);
            }
            decode::Cell::Owned(text)
        }
        _ => decode::Cell::Owned(text),
    }
}

/// A JS string, in one N-API call when it is short (most are: ids, names, dates).
unsafe fn read_text(env: sys::napi_env, value: sys::napi_value) -> napi::Result<String> {
    const SHORT: usize = 128;
    let mut buf = vec![0u8; SHORT];
    let mut written = 0;
    check(
        sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), SHORT, &mut written),
        "string",
    )?;
    // With room for a 4-byte character and the NUL left over, nothing was cut off.
    if written + 5 <= SHORT {
        buf.truncate(written);
        if let Ok(text) = String::from_utf8(buf) {
            return Ok(text);
        }
    }
    js::read_string(env, value)
}

/// How many rows a write affected: the client's count (a number, or a bigint).
unsafe fn count(env: sys::napi_env, value: sys::napi_value) -> Result<u64> {
    let mut ty = 0;
    let napi = |e: napi::Error| KavachError::database(e.reason);
    check(sys::napi_typeof(env, value, &mut ty), "typeof").map_err(napi)?;
    match ty {
        sys::ValueType::napi_number => {
            let mut n = 0.0;
            check(sys::napi_get_value_double(env, value, &mut n), "number").map_err(napi)?;
            Ok(n.max(0.0) as u64)
        }
        sys::ValueType::napi_bigint => {
            let (mut n, mut lossless) = (0u64, false);
            check(
                sys::napi_get_value_bigint_uint64(env, value, &mut n, &mut lossless),
                "bigint",
            )
            .map_err(napi)?;
            Ok(n)
        }
        _ => Err(KavachError::database(
            "the Prisma client's $executeRawUnsafe did not return a count",
        )),
    }
}

/// The error of a statement the client ran and the database refused, mapped as over
/// sqlx. SQLite codes come by name from the driver adapter (`SQLITE_BUSY`), by number
/// from Prisma's Rust engine.
fn client_error(
    code: Option<&str>,
    message: &str,
    kind: Option<&str>,
    model: &'static Model,
) -> KavachError {
    let code = code.unwrap_or_default();
    let unique = kind == Some("UniqueConstraintViolation")
        || matches!(
            code,
            "SQLITE_CONSTRAINT_UNIQUE"
                | "SQLITE_CONSTRAINT_PRIMARYKEY"
                | "2067"
                | "1555"
                | "23505"
                | "1062"
        );
    let code = match code {
        "SQLITE_ERROR" => "1",
        "SQLITE_BUSY" => "5",
        "SQLITE_BUSY_RECOVERY" => "261",
        "SQLITE_BUSY_SNAPSHOT" => "517",
        "SQLITE_BUSY_TIMEOUT" => "773",
        other => other,
    };
    map_database_error(code, message, unique, Some(&ErrorContext { model }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_date_text_keeps_its_storage_class() {
        assert!(matches!(
            text_cell(ScalarType::DateTime, "1735787045678".into()),
            decode::Cell::Int(1735787045678)
        ));
        assert!(matches!(
            text_cell(ScalarType::DateTime, "1735787045.5".into()),
            decode::Cell::Real(_)
        ));
        assert!(matches!(
            text_cell(ScalarType::DateTime, "2025-01-02T03:04:05.678+00:00".into()),
            decode::Cell::Owned(_)
        ));
        assert!(matches!(
            text_cell(ScalarType::Json, "5".into()),
            decode::Cell::Owned(s) if s == "5"
        ));
    }

    #[test]
    fn client_errors_map_as_driver_errors() {
        let user = SCHEMA.model("KavachUser");
        let unique = client_error(
            Some("SQLITE_CONSTRAINT_UNIQUE"),
            "UNIQUE constraint failed: kavach_users.email",
            Some("UniqueConstraintViolation"),
            user,
        );
        assert_eq!(unique.code(), Some("P2002"));
        assert_eq!(unique.meta.target, Some(vec!["email".to_string()]));
        let pg = client_error(
            Some("23505"),
            "duplicate key value violates unique constraint \"kavach_users_pkey\"",
            Some("UniqueConstraintViolation"),
            user,
        );
        assert_eq!(pg.meta.target, Some(vec!["id".to_string()]));
        let missing = client_error(
            Some("SQLITE_ERROR"),
            "no such table: kavach_users",
            Some("TableDoesNotExist"),
            user,
        );
        assert_eq!(missing.code(), Some("P2021"));
        assert_eq!(
            missing.meta.missing.as_deref(),
            Some(&crate::error::Missing::Table("kavach_users".into()))
        );
        let column = client_error(
            Some("1054"),
            "Unknown column 'banned' in 'field list'",
            Some("ColumnNotFound"),
            user,
        );
        assert_eq!(column.code(), Some("P2022"));
        assert_eq!(
            column.meta.missing.as_deref(),
            Some(&crate::error::Missing::Column("banned".into()))
        );
    }
}
