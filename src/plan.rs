//! From a method description and the caller's arguments to a [`Plan`]: validated values
//! and the SQL to run, with no connection in sight. Any executor can run a plan.

use sha2::{Digest, Sha256};

use crate::dialect::{Channel, Dialect};
use crate::error::{KavachError, Result};
use crate::methods::{Arg, Change, Cmp, DerivedId, Dir, Guard, Method, Returns, Set, Shape};
use crate::schema::{DefaultValue, Field, Model, ScalarType, SCHEMA};
use crate::value::{json_text, parse_iso_input, storable_date, JsValue, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Bound>,
}

/// A parameter and the column it meets: servers want typed NULLs, and SQLite writes a
/// date in the format of its column (ISO text, epoch milliseconds or seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: Value,
    pub ty: ScalarType,
    /// The model field (index) the value is compared with or written to, if any.
    pub field: Option<usize>,
}

/// How many rows a statement yields and what the caller gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The first row or `null`.
    Optional,
    /// Every row.
    Many,
    /// Exactly one row; none is P2025 naming `operation`. `returns` says whether the
    /// caller gets the row or nothing.
    One {
        operation: &'static str,
        returns: Returns,
    },
    /// No rows: report nothing, or the number of rows affected.
    Affected { returns: Returns },
    /// No rows, but at least one must be affected (P2025 otherwise).
    AffectedOne { operation: &'static str },
    /// `before` is a guarded write: when it affected no row, `null` (or P2025 naming
    /// `missing`); otherwise the statement reads the row back.
    AfterWrite { missing: Option<&'static str> },
    /// An insert whose row is `Plan::inserted`, exactly as written (no RETURNING, and no
    /// read-back: see `plan_for`).
    Inserted,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub model: &'static Model,
    /// A write to run first, its result ignored: where the dialect has no RETURNING,
    /// `statement` then reads the written row back.
    pub before: Option<Statement>,
    pub statement: Statement,
    pub expect: Expect,
    pub writes: bool,
    /// With `Expect::Inserted`: the row the insert writes, every field in order.
    pub inserted: Option<Vec<Value>>,
    /// Where its statements are recorded as they run, when the caller listens.
    pub log: Option<crate::observe::StatementLog>,
}

impl Plan {
    /// Does it take more than one statement (a write, then its read-back)? It must then
    /// run in a transaction, to see exactly what its own write produced.
    pub fn is_compound(&self) -> bool {
        self.before.is_some()
    }

    /// The plan, its statements recorded in `log` (if any) as they run.
    pub fn logged(mut self, log: Option<crate::observe::StatementLog>) -> Self {
        self.log = log;
        self
    }
}

/// The current time, as the adapter's `deleteExpired*` methods compare with it.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn plan(method: &Method, args: &[JsValue], dialect: Dialect) -> Result<Plan> {
    plan_for(method, args, dialect, Channel::Driver)
}

/// The plan of a call whose statements reach the database over `channel`.
pub fn plan_for(
    method: &Method,
    args: &[JsValue],
    dialect: Dialect,
    channel: Channel,
) -> Result<Plan> {
    let model = SCHEMA.model(method.model);
    let mut builder = Builder::new(method, model, dialect, args)?;
    builder.channel = channel;
    let mut inserted = None;
    let expect = match method.shape {
        Shape::FindOne { guards, order } => {
            let mut conds = builder.key_conditions()?;
            conds.extend(guards.iter().map(|g| guard_condition(model, g)));
            builder.select(&conds, order, Some((1, 0)));
            Expect::Optional
        }
        Shape::FindMany {
            guards,
            order,
            page,
        } => {
            let mut conds = builder.key_conditions()?;
            conds.extend(builder.filter_conditions()?);
            conds.extend(guards.iter().map(|g| guard_condition(model, g)));
            let paging = match page {
                Some(page) => Some(builder.paging(page)?),
                None => None,
            };
            builder.select(&conds, order, paging);
            Expect::Many
        }
        Shape::Create if !dialect.supports_returning() => {
            // MySQL's read-back would take a transaction of its own (BEGIN, INSERT, SELECT,
            // COMMIT: four round trips). The row is what was written: every value is given or
            // defaulted here (the differential tests check it against a read-back, over sqlx
            // and through a client).
            let row = builder.record()?;
            builder.insert(&row, None);
            let mut cells = vec![Value::Null; model.fields.len()];
            for (field, value) in &row {
                cells[*field] = value.clone();
            }
            inserted = Some(cells);
            Expect::Inserted
        }
        Shape::Create => {
            let row = builder.record()?;
            builder.insert(&row, None);
            let id = model.id_field();
            builder.read_back(row.iter().find(|(i, _)| *i == id));
            Expect::One {
                operation: "a create",
                returns: Returns::Row,
            }
        }
        Shape::Upsert {
            conflict,
            update,
            derived_id,
        } => {
            let mut row = match derived_id {
                Some(derived) => builder.key_record(derived)?,
                None => builder.record()?,
            };
            row.sort_by_key(|(i, _)| *i);
            let conflict = model.field(conflict);
            builder.insert(&row, Some((conflict, update)));
            builder.read_back(row.iter().find(|(i, _)| *i == conflict));
            Expect::One {
                operation: "an upsert",
                returns: Returns::Row,
            }
        }
        Shape::Update { set, returns } => {
            let conds = builder.key_conditions()?;
            let (selector, rest) = conds.split_first().expect("updates select a row");
            let assignments = match set {
                Set::Patch => builder.patch()?,
                Set::Keys => rest.iter().map(|c| (c.field, c.value.clone())).collect(),
                Set::Flag(field, flag) => vec![(model.field(field), Value::Bool(flag))],
            };
            if assignments.is_empty() {
                builder.select(std::slice::from_ref(selector), None, Some((1, 0)));
            } else {
                builder.update(selector, &assignments, returns == Returns::Row);
                if returns == Returns::Row {
                    // The row is found again under its new key if the update changed it.
                    let key = assignments
                        .iter()
                        .find(|(i, _)| *i == selector.field)
                        .cloned()
                        .unwrap_or((selector.field, selector.value.clone()));
                    builder.read_back(Some(&key));
                }
            }
            match returns {
                // The write matched no row: P2025, whatever the read-back would find
                // under a key the patch changed.
                Returns::Row if builder.before.is_some() => Expect::AfterWrite {
                    missing: Some("an update"),
                },
                Returns::Row => Expect::One {
                    operation: "an update",
                    returns,
                },
                _ if assignments.is_empty() => Expect::One {
                    operation: "an update",
                    returns,
                },
                _ => Expect::AffectedOne {
                    operation: "an update",
                },
            }
        }
        Shape::Guarded {
            change,
            guards,
            missing_is_error,
        } => {
            let mut conds = builder.key_conditions()?;
            let key = (conds[0].field, conds[0].value.clone());
            conds.extend(guards.iter().map(|g| guard_condition(model, g)));
            builder.guarded_update(&conds, assignment(model, change));
            builder.read_back(Some(&key));
            let missing = missing_is_error.then_some("an update");
            match (builder.before.is_some(), missing) {
                (true, _) => Expect::AfterWrite { missing },
                (false, Some(operation)) => Expect::One {
                    operation,
                    returns: Returns::Row,
                },
                (false, None) => Expect::Optional,
            }
        }
        Shape::UpdateMany { change, guards } => {
            let mut conds = builder.key_conditions()?;
            conds.extend(guards.iter().map(|g| guard_condition(model, g)));
            builder.update_many(&conds, assignment(model, change));
            Expect::Affected {
                returns: Returns::Count,
            }
        }
        Shape::Delete => {
            let conds = builder.key_conditions()?;
            builder.delete(&conds);
            Expect::AffectedOne {
                operation: "a delete",
            }
        }
        Shape::DeleteMany { expired, returns } => {
            let mut conds = builder.key_conditions()?;
            if let Some(field) = expired {
                conds.push(Cond::new(
                    model.field(field),
                    CondCmp::Lt,
                    Value::DateTime(now_millis()),
                ));
            }
            builder.delete(&conds);
            Expect::Affected { returns }
        }
    };
    let (before, statement) = builder.finish();
    Ok(Plan {
        model,
        before,
        statement,
        expect,
        writes: crate::methods::writes(method),
        inserted,
        log: None,
    })
}

/// The column a folded read (`plan_fold`) tags each row with: the place of the call it
/// answers.
pub const FOLD_TAG: &str = "kavach_fold";

/// A call's key values, when it is a read that can be folded with others of its method:
/// at most one row (no order), every key given and none null.
pub fn fold_keys(
    method: &Method,
    args: &[JsValue],
    dialect: Dialect,
) -> Option<Vec<(usize, Value)>> {
    let Shape::FindOne { order: None, .. } = method.shape else {
        return None;
    };
    let model = SCHEMA.model(method.model);
    let builder = Builder::new(method, model, dialect, args).ok()?;
    let conds = builder.key_conditions().ok()?;
    if conds.is_empty() || conds.iter().any(|c| c.value == Value::Null) {
        return None;
    }
    Some(conds.into_iter().map(|c| (c.field, c.value)).collect())
}

/// One statement for reads of `method` (each call's `fold_keys`): the model's rows joined
/// with a table of the calls' keys, each row tagged (FOLD_TAG) with the place of the call
/// it answers; the database compares the keys exactly as in each call's own statement.
/// Prisma folds concurrent `findUnique` calls alike, into one `IN (...)`.
pub fn plan_fold(
    method: &Method,
    calls: &[Vec<(usize, Value)>],
    dialect: Dialect,
    channel: Channel,
) -> Statement {
    let model = SCHEMA.model(method.model);
    let mut builder = Builder::new(method, model, dialect, &[]).expect("no arguments to check");
    builder.channel = channel;
    let Shape::FindOne { guards, .. } = method.shape else {
        unreachable!("only FindOne reads fold")
    };
    let keys = calls.first().map_or(0, Vec::len);
    let names: Vec<String> = (0..keys).map(|k| format!("kavach_k{k}")).collect();
    builder.sql = format!("WITH v({FOLD_TAG}, {}) AS (", names.join(", "));
    for (place, call) in calls.iter().enumerate() {
        let values = dialect == Dialect::Mysql;
        builder.sql.push_str(match (place, values) {
            (0, false) => "VALUES (",
            (_, false) => ", (",
            (0, true) => "SELECT ",
            (_, true) => " UNION ALL SELECT ",
        });
        builder.sql.push_str(&place.to_string());
        for (field, value) in call {
            builder.sql.push_str(", ");
            builder.bind(value.clone(), *field);
        }
        if !values {
            builder.sql.push(')');
        }
    }
    let columns = builder.column_list();
    let table = builder.table();
    builder.sql.push_str(&format!(
        ") SELECT v.{FOLD_TAG}, {columns} FROM {table} JOIN v ON "
    ));
    for (k, (field, _)) in calls[0].iter().enumerate() {
        if k > 0 {
            builder.sql.push_str(" AND ");
        }
        let column = builder.column(*field);
        let key = &names[k];
        builder.sql.push_str(&format!("{column} = v.{key}"));
        if let (true, Some((open, close))) = (
            model.fields[*field].is_secret(),
            dialect.exact_text_comparison(),
        ) {
            builder
                .sql
                .push_str(&format!(" AND {column} = {open}v.{key}{close}"));
        }
    }
    let conds: Vec<Cond> = guards.iter().map(|g| guard_condition(model, g)).collect();
    builder.where_clause(&conds);
    builder.finish().1
}

/// A comparison in a WHERE clause; `Lt` only appears in built-in conditions.
#[derive(Debug, Clone)]
struct Cond {
    field: usize,
    cmp: CondCmp,
    value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CondCmp {
    Eq,
    Gte,
    Lte,
    Lt,
    Gt,
    /// `(limit IS NULL OR field < limit)`; the condition's value is unused.
    BelowColumn(usize),
}

fn guard_condition(model: &Model, guard: &Guard) -> Cond {
    match *guard {
        Guard::Is(field, flag) => Cond::new(model.field(field), Cmp::Eq, Value::Bool(flag)),
        Guard::Equals(field, text) => {
            Cond::new(model.field(field), Cmp::Eq, Value::Text(text.into()))
        }
        Guard::NotExpired(field) => Cond::new(
            model.field(field),
            CondCmp::Gt,
            Value::DateTime(now_millis()),
        ),
        Guard::Expired(field) => Cond::new(
            model.field(field),
            CondCmp::Lt,
            Value::DateTime(now_millis()),
        ),
        Guard::BelowLimit(field, limit) => Cond::new(
            model.field(field),
            CondCmp::BelowColumn(model.field(limit)),
            Value::Int(0),
        ),
    }
}

fn assignment(model: &Model, change: Change) -> Assignment {
    match change {
        Change::Flag(field, flag) => Assignment::Set(model.field(field), Value::Bool(flag)),
        Change::Text(field, text) => Assignment::Set(model.field(field), Value::Text(text.into())),
        Change::Increment(field) => Assignment::Increment(model.field(field)),
    }
}

/// One `SET` item of an update.
enum Assignment {
    Set(usize, Value),
    /// `column = column + 1`
    Increment(usize),
}

impl From<Cmp> for CondCmp {
    fn from(cmp: Cmp) -> Self {
        match cmp {
            Cmp::Eq => CondCmp::Eq,
            Cmp::Gte => CondCmp::Gte,
            Cmp::Lte => CondCmp::Lte,
        }
    }
}

impl Cond {
    fn new(field: usize, cmp: impl Into<CondCmp>, value: Value) -> Self {
        Cond {
            field,
            cmp: cmp.into(),
            value,
        }
    }
}

struct Builder<'a> {
    method: &'a Method,
    model: &'static Model,
    dialect: Dialect,
    channel: Channel,
    args: &'a [JsValue],
    sql: String,
    params: Vec<Bound>,
    before: Option<Statement>,
}

impl<'a> Builder<'a> {
    fn new(
        method: &'a Method,
        model: &'static Model,
        dialect: Dialect,
        args: &'a [JsValue],
    ) -> Result<Self> {
        if args.len() > method.args.len()
            && args[method.args.len()..]
                .iter()
                .any(|a| *a != JsValue::Undefined)
        {
            return Err(KavachError::validation(
                method.name,
                format!(
                    "expected at most {} argument(s), got {}",
                    method.args.len(),
                    args.len()
                ),
            ));
        }
        Ok(Builder {
            method,
            model,
            dialect,
            channel: Channel::Driver,
            args,
            sql: String::new(),
            params: Vec::new(),
            before: None,
        })
    }

    fn invalid(&self, message: impl std::fmt::Display) -> KavachError {
        KavachError::validation(self.method.name, message)
    }

    fn arg(&self, i: usize) -> &JsValue {
        self.args.get(i).unwrap_or(&JsValue::Undefined)
    }

    /// The argument of kind `kind`, with its position.
    fn find_arg(&self, pick: impl Fn(&Arg) -> bool) -> Option<(usize, &Arg)> {
        self.method.args.iter().enumerate().find(|(_, a)| pick(a))
    }

    fn key_conditions(&self) -> Result<Vec<Cond>> {
        let mut conds = Vec::new();
        for (i, arg) in self.method.args.iter().enumerate() {
            if let Arg::Key(name) = arg {
                let field_index = self.model.field(name);
                let field = &self.model.fields[field_index];
                let value = match self.arg(i) {
                    JsValue::Undefined => {
                        return Err(self.invalid(format!(
                            "argument `{name}` (position {}) is required, got undefined",
                            i + 1
                        )))
                    }
                    js => convert(field, js)
                        .map_err(|e| self.invalid(format!("argument `{name}`: {e}")))?,
                };
                conds.push(Cond::new(field_index, Cmp::Eq, value));
            }
        }
        Ok(conds)
    }

    fn object_arg(&self, i: usize, what: &str) -> Result<Option<&'a [(String, JsValue)]>> {
        match self.args.get(i).unwrap_or(&JsValue::Undefined) {
            JsValue::Undefined | JsValue::Null if what == "filter" => Ok(None),
            JsValue::Object(entries) => Ok(Some(entries)),
            other => Err(self.invalid(format!(
                "argument {} ({what}) must be an object, got {}",
                i + 1,
                other.describe()
            ))),
        }
    }

    fn filter_conditions(&self) -> Result<Vec<Cond>> {
        let Some((i, Arg::Filter(keys))) = self.find_arg(|a| matches!(a, Arg::Filter(_))) else {
            return Ok(Vec::new());
        };
        let Some(entries) = self.object_arg(i, "filter")? else {
            return Ok(Vec::new());
        };
        let page_keys = self.page_keys();
        let mut conds = Vec::new();
        for (key, js) in entries {
            let Some(spec) = keys.iter().find(|k| k.key == key) else {
                if page_keys.contains(&key.as_str()) {
                    continue;
                }
                let known: Vec<&str> = keys
                    .iter()
                    .map(|k| k.key)
                    .chain(page_keys.iter().copied())
                    .collect();
                return Err(self.invalid(format!(
                    "unknown filter `{key}`; known filters: {}",
                    known.join(", ")
                )));
            };
            if *js == JsValue::Undefined {
                continue;
            }
            let field_index = self.model.field(spec.field);
            let field = &self.model.fields[field_index];
            if spec.cmp != Cmp::Eq && *js == JsValue::Null {
                return Err(self.invalid(format!("filter `{key}` must not be null")));
            }
            let value =
                convert(field, js).map_err(|e| self.invalid(format!("filter `{key}`: {e}")))?;
            conds.push(Cond::new(field_index, spec.cmp, value));
        }
        Ok(conds)
    }

    fn page_keys(&self) -> Vec<&'static str> {
        match self.method.shape {
            Shape::FindMany { page: Some(p), .. } => vec![p.limit_key, p.offset_key],
            _ => Vec::new(),
        }
    }

    fn paging(&self, page: crate::methods::Page) -> Result<(i64, i64)> {
        let entries = match self.find_arg(|a| matches!(a, Arg::Filter(_))) {
            Some((i, _)) => self.object_arg(i, "filter")?.unwrap_or(&[]),
            None => &[],
        };
        let get = |key: &str, default: i64| -> Result<i64> {
            match entries.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
                None | Some(JsValue::Undefined) => Ok(default),
                // Fractions are truncated, as Prisma does with `take` / `skip`.
                Some(JsValue::Number(n)) if *n >= 0.0 && *n < i32::MAX as f64 => {
                    Ok(n.trunc() as i64)
                }
                Some(other) => Err(self.invalid(format!(
                    "filter `{key}` must be a non-negative integer, got {}",
                    other.describe()
                ))),
            }
        };
        Ok((
            get(page.limit_key, page.default_limit)?,
            get(page.offset_key, 0)?,
        ))
    }

    /// A create input: every required field, defaults filled in, unknown keys refused.
    fn record(&self) -> Result<Vec<(usize, Value)>> {
        let (i, _) = self
            .find_arg(|a| matches!(a, Arg::Record))
            .expect("record methods take a record");
        let entries = self
            .object_arg(i, "input")?
            .expect("inputs are required objects");
        self.reject_unknown(entries)?;
        let mut row = Vec::with_capacity(self.model.fields.len());
        for (index, field) in self.model.fields.iter().enumerate() {
            let given = entries
                .iter()
                .rev()
                .find(|(k, _)| *k == field.name)
                .map(|(_, v)| v)
                .filter(|v| **v != JsValue::Undefined);
            let value = match (given, &field.default) {
                (Some(js), _) => convert(field, js)
                    .map_err(|e| self.invalid(format!("field `{}`: {e}", field.name)))?,
                (None, Some(default)) => default_value(default),
                (None, None) if field.optional => continue,
                (None, None) => {
                    return Err(self.invalid(format!(
                        "missing required field `{}` ({}) of {}",
                        field.name,
                        field.ty.prisma_name(),
                        self.model.name
                    )))
                }
            };
            row.push((index, value));
        }
        Ok(row)
    }

    /// A record assembled from `Key` arguments plus a derived id (upsertRateLimit).
    fn key_record(&self, derived: DerivedId) -> Result<Vec<(usize, Value)>> {
        let conds = self.key_conditions()?;
        let mut row: Vec<(usize, Value)> = conds.into_iter().map(|c| (c.field, c.value)).collect();
        match derived {
            DerivedId::RateLimitWindow => {
                let text = |name: &str| -> String {
                    match row.iter().find(|(i, _)| *i == self.model.field(name)) {
                        Some((_, Value::Text(s))) => s.clone(),
                        Some((_, Value::DateTime(ms))) => ms.to_string(),
                        _ => String::new(),
                    }
                };
                let seed = format!(
                    "{}:{}:{}",
                    text("agentId"),
                    text("resource"),
                    text("windowStart")
                );
                let digest = Sha256::digest(seed.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                row.push((self.model.id_field(), Value::Text(hex[..32].to_string())));
            }
        }
        Ok(row)
    }

    fn patch(&self) -> Result<Vec<(usize, Value)>> {
        let (i, _) = self
            .find_arg(|a| matches!(a, Arg::Patch))
            .expect("patch methods take data");
        let entries = self
            .object_arg(i, "data")?
            .expect("data is a required object");
        self.reject_unknown(entries)?;
        let mut assignments: Vec<(usize, Value)> = Vec::new();
        for (key, js) in entries {
            if *js == JsValue::Undefined {
                continue;
            }
            let index = self.model.field(key);
            let value = convert(&self.model.fields[index], js)
                .map_err(|e| self.invalid(format!("field `{key}`: {e}")))?;
            assignments.retain(|(i, _)| *i != index);
            assignments.push((index, value));
        }
        assignments.sort_by_key(|(i, _)| *i);
        Ok(assignments)
    }

    fn reject_unknown(&self, entries: &[(String, JsValue)]) -> Result<()> {
        for (key, _) in entries {
            if self.model.field_index(key).is_none() {
                return Err(self.invalid(format!(
                    "unknown field `{key}` for {}; fields are: {}",
                    self.model.name,
                    self.model
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    // ---- SQL text ----

    fn bind(&mut self, value: Value, field: usize) {
        let ty = self.model.fields[field].ty;
        self.push_bound(Bound {
            value,
            ty,
            field: Some(field),
        });
    }

    fn push_bound(&mut self, bound: Bound) {
        self.params.push(bound);
        let ty = self.params.last().map_or(ScalarType::String, |b| b.ty);
        let placeholder = self
            .dialect
            .typed_placeholder(self.params.len(), ty, self.channel);
        self.sql.push_str(&placeholder);
    }

    /// Where the dialect cannot return the written row: keep the write as `before` and
    /// make the statement a read of the row by `key`.
    fn read_back(&mut self, key: Option<&(usize, Value)>) {
        if self.dialect.supports_returning() {
            return;
        }
        let (field, value) = key.expect("written rows have their key").clone();
        let write = Statement {
            sql: std::mem::take(&mut self.sql),
            params: std::mem::take(&mut self.params),
        };
        self.before = Some(write);
        self.select(&[Cond::new(field, Cmp::Eq, value)], None, Some((1, 0)));
    }

    fn column(&self, field: usize) -> String {
        self.dialect.quote(&self.model.fields[field].column)
    }

    /// Every field, in declaration order, as the channel reads it.
    fn column_list(&self) -> String {
        (0..self.model.fields.len())
            .map(|i| {
                let column = self.column(i);
                self.dialect
                    .select_column(column, self.model.fields[i].ty, self.channel)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn table(&self) -> String {
        self.dialect.quote(&self.model.table)
    }

    fn where_clause(&mut self, conds: &[Cond]) {
        for (n, cond) in conds.iter().enumerate() {
            self.sql.push_str(if n == 0 { " WHERE " } else { " AND " });
            let column = self.column(cond.field);
            if let CondCmp::BelowColumn(limit) = cond.cmp {
                let limit = self.column(limit);
                self.sql
                    .push_str(&format!("({limit} IS NULL OR {column} < {limit})"));
                continue;
            }
            self.sql.push_str(&column);
            if cond.value == Value::Null {
                self.sql.push_str(" IS NULL");
                continue;
            }
            self.sql.push_str(match cond.cmp {
                CondCmp::Eq => " = ",
                CondCmp::Gte => " >= ",
                CondCmp::Lte => " <= ",
                CondCmp::Lt => " < ",
                CondCmp::Gt => " > ",
                CondCmp::BelowColumn(_) => unreachable!("written above"),
            });
            self.bind(cond.value.clone(), cond.field);
            let secret = self.model.fields[cond.field].is_secret();
            if let (CondCmp::Eq, true, Some((open, close))) =
                (cond.cmp, secret, self.dialect.exact_text_comparison())
            {
                self.sql.push_str(&format!(" AND {column} = {open}"));
                self.bind(cond.value.clone(), cond.field);
                self.sql.push_str(close);
            }
        }
    }

    fn select(&mut self, conds: &[Cond], order: Option<(&str, Dir)>, page: Option<(i64, i64)>) {
        self.sql = format!("SELECT {} FROM {}", self.column_list(), self.table());
        self.where_clause(conds);
        if let Some((field, dir)) = order {
            let mut column = self.column(self.model.field(field));
            if self.channel == Channel::PrismaClient {
                // The select list may alias a cast under the column's own name, and ORDER BY
                // would take the alias (the text) over the column.
                column = format!("{}.{column}", self.table());
            }
            let dir = match dir {
                Dir::Asc => "ASC",
                Dir::Desc => "DESC",
            };
            self.sql.push_str(&format!(" ORDER BY {column} {dir}"));
        }
        if let Some((limit, offset)) = page {
            for (keyword, n) in [(" LIMIT ", limit), (" OFFSET ", offset)] {
                self.sql.push_str(keyword);
                self.push_bound(Bound {
                    value: Value::Int(n),
                    ty: ScalarType::Int,
                    field: None,
                });
            }
        }
    }

    fn insert(&mut self, row: &[(usize, Value)], upsert: Option<(usize, &[&str])>) {
        let columns: Vec<String> = row.iter().map(|(i, _)| self.column(*i)).collect();
        self.sql = format!(
            "INSERT INTO {} ({}) VALUES (",
            self.table(),
            columns.join(", ")
        );
        for (n, (field, value)) in row.iter().enumerate() {
            if n > 0 {
                self.sql.push_str(", ");
            }
            self.bind(value.clone(), *field);
        }
        self.sql.push(')');
        if let Some((conflict, update)) = upsert {
            let columns: Vec<String> = update
                .iter()
                .map(|f| self.column(self.model.field(f)))
                .collect();
            let clause = self.dialect.upsert_clause(&self.column(conflict), &columns);
            self.sql.push_str(&clause);
        }
        self.returning();
    }

    fn update(&mut self, selector: &Cond, assignments: &[(usize, Value)], returning: bool) {
        self.sql = format!("UPDATE {} SET ", self.table());
        for (n, (field, value)) in assignments.iter().enumerate() {
            if n > 0 {
                self.sql.push_str(", ");
            }
            let column = self.column(*field);
            self.sql.push_str(&column);
            self.sql.push_str(" = ");
            self.bind(value.clone(), *field);
        }
        self.where_clause(std::slice::from_ref(selector));
        if returning {
            self.returning();
        }
    }

    fn guarded_update(&mut self, conds: &[Cond], assignment: Assignment) {
        self.update_many(conds, assignment);
        self.returning();
    }

    fn update_many(&mut self, conds: &[Cond], assignment: Assignment) {
        self.sql = format!("UPDATE {} SET ", self.table());
        match assignment {
            Assignment::Set(field, value) => {
                let column = self.column(field);
                self.sql.push_str(&format!("{column} = "));
                self.bind(value, field);
            }
            Assignment::Increment(field) => {
                let column = self.column(field);
                self.sql.push_str(&format!("{column} = {column} + 1"));
            }
        }
        self.where_clause(conds);
    }

    fn delete(&mut self, conds: &[Cond]) {
        self.sql = format!("DELETE FROM {}", self.table());
        self.where_clause(conds);
    }

    fn returning(&mut self) {
        if !self.dialect.supports_returning() {
            return;
        }
        let list = self.column_list();
        self.sql.push_str(" RETURNING ");
        self.sql.push_str(&list);
    }

    fn finish(self) -> (Option<Statement>, Statement) {
        let statement = Statement {
            sql: self.sql,
            params: self.params,
        };
        (self.before, statement)
    }
}

fn default_value(default: &DefaultValue) -> Value {
    match default {
        DefaultValue::String(s) => Value::Text(s.clone()),
        DefaultValue::Int(i) => Value::Int(*i),
        DefaultValue::Boolean(b) => Value::Bool(*b),
    }
}

/// Converts a JS value to the field's type, as Prisma validates it.
pub fn convert(field: &Field, js: &JsValue) -> std::result::Result<Value, String> {
    if field.ty == ScalarType::Json {
        // Prisma 7 accepts `null` for any Json field and stores the JSON text `null`.
        return json_text(js)
            .map(Value::JsonText)
            .map_err(|e| format!("{} cannot be stored as JSON", e.0));
    }
    if *js == JsValue::Null {
        return if field.optional {
            Ok(Value::Null)
        } else {
            Err(format!(
                "must not be null ({} is required)",
                field.ty.prisma_name()
            ))
        };
    }
    match (field.ty, js) {
        (ScalarType::String, JsValue::String(s)) => Ok(Value::Text(s.clone())),
        // Like Prisma: fractions are truncated toward zero; the range is what a JS number
        // holds exactly (Prisma writes larger values, then fails to read them back).
        (ScalarType::Int, JsValue::Number(n)) if n.is_finite() => {
            let whole = n.trunc();
            if whole.abs() > MAX_SAFE_INTEGER {
                Err(format!(
                    "{} is beyond the integers a JS number holds exactly",
                    js.describe()
                ))
            } else {
                Ok(Value::Int(whole as i64))
            }
        }
        (ScalarType::Boolean, JsValue::Bool(b)) => Ok(Value::Bool(*b)),
        (ScalarType::DateTime, JsValue::Date(ms)) => {
            if storable_date(*ms) {
                Ok(Value::DateTime(*ms as i64))
            } else if ms.is_finite() {
                Err("the Date is beyond year 262143, which cannot be stored".into())
            } else {
                Err("got an invalid Date".into())
            }
        }
        (ScalarType::DateTime, JsValue::String(s)) => parse_iso_input(s)
            .filter(|ms| storable_date(*ms as f64))
            .map(Value::DateTime)
            .ok_or_else(|| {
                format!(
                    "expected a Date or an ISO-8601 date-time string, got {}",
                    js.describe()
                )
            }),
        _ => Err(format!(
            "expected {}, got {}",
            expected(field.ty),
            js.describe()
        )),
    }
}

const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn expected(ty: ScalarType) -> &'static str {
    match ty {
        ScalarType::String => "a string",
        ScalarType::Int => "an integer",
        ScalarType::Boolean => "a boolean",
        ScalarType::DateTime => "a Date or an ISO-8601 date-time string",
        ScalarType::Json => "a JSON value",
    }
}

pub fn method_by_name(name: &str) -> Option<&'static Method> {
    crate::methods::METHODS.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(entries: &[(&str, JsValue)]) -> JsValue {
        JsValue::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }
    fn s(v: &str) -> JsValue {
        JsValue::String(v.into())
    }

    #[test]
    fn find_by_unique_key() {
        let p = plan(
            method_by_name("findUserByEmail").unwrap(),
            &[s("a@b.c")],
            Dialect::Sqlite,
        )
        .unwrap();
        assert!(p
            .statement
            .sql
            .ends_with("FROM \"kavach_users\" WHERE \"email\" = ? LIMIT ? OFFSET ?"));
        assert_eq!(p.statement.params[0].value, Value::Text("a@b.c".into()));
        assert_eq!(p.expect, Expect::Optional);
    }

    #[test]
    fn undefined_key_is_rejected_with_method_and_argument() {
        let err = plan(
            method_by_name("findAgentById").unwrap(),
            &[],
            Dialect::Sqlite,
        )
        .unwrap_err();
        assert!(
            err.message.contains("findAgentById") && err.message.contains("`id`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn query_audit_logs_defaults_and_ranges() {
        let m = method_by_name("queryAuditLogs").unwrap();
        let p = plan(
            m,
            &[obj(&[("agentId", s("a")), ("since", JsValue::Date(0.0))])],
            Dialect::Sqlite,
        )
        .unwrap();
        assert!(p.statement.sql.contains("WHERE \"agent_id\" = ? AND \"timestamp\" >= ? ORDER BY \"timestamp\" DESC LIMIT ? OFFSET ?"), "{}", p.statement.sql);
        let page: Vec<&Value> = p.statement.params[2..].iter().map(|b| &b.value).collect();
        assert_eq!(page, [&Value::Int(100), &Value::Int(0)]);
        let err = plan(m, &[obj(&[("agentID", s("a"))])], Dialect::Sqlite).unwrap_err();
        assert!(err.message.contains("unknown filter `agentID`"));
    }

    #[test]
    fn create_fills_defaults_and_refuses_missing_or_unknown_fields() {
        let m = method_by_name("createAgent").unwrap();
        let base = vec![
            ("id", s("a1")),
            ("ownerId", s("u1")),
            ("name", s("n")),
            ("type", s("autonomous")),
            ("tokenHash", s("h")),
            ("tokenPrefix", s("p")),
            ("createdAt", JsValue::Date(0.0)),
            ("updatedAt", s("2025-01-02T03:04:05.678Z")),
        ];
        let p = plan(m, &[obj(&base)], Dialect::Sqlite).unwrap();
        assert!(p
            .statement
            .params
            .iter()
            .any(|b| b.value == Value::Text("active".into())));
        assert!(p.statement.sql.contains("RETURNING"));
        let mut missing = base.clone();
        missing.remove(4);
        let err = plan(m, &[obj(&missing)], Dialect::Sqlite).unwrap_err();
        assert!(err.message.contains("createAgent") && err.message.contains("`tokenHash`"));
        let mut unknown = base.clone();
        unknown.push(("bogus", JsValue::Number(1.0)));
        assert!(plan(m, &[obj(&unknown)], Dialect::Sqlite)
            .unwrap_err()
            .message
            .contains("`bogus`"));
        let mut wrong = base;
        wrong[2] = ("name", JsValue::Number(42.0));
        assert!(plan(m, &[obj(&wrong)], Dialect::Sqlite)
            .unwrap_err()
            .message
            .contains("expected a string, got number 42"));
    }

    #[test]
    fn rate_limit_id_is_derived_like_the_ts_adapter() {
        let m = method_by_name("upsertRateLimit").unwrap();
        let p = plan(
            m,
            &[
                s("agent"),
                s("res"),
                JsValue::Date(1_700_000_000_000.0),
                JsValue::Number(3.0),
            ],
            Dialect::Sqlite,
        )
        .unwrap();
        let digest = Sha256::digest(b"agent:res:1700000000000");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(p
            .statement
            .params
            .iter()
            .any(|b| b.value == Value::Text(hex[..32].to_string())));
        assert!(p
            .statement
            .sql
            .contains("ON CONFLICT (\"id\") DO UPDATE SET \"count\" = excluded.\"count\""));
    }

    #[test]
    fn mysql_reads_written_rows_back_by_key() {
        let m = method_by_name("updateUser").unwrap();
        let p = plan(
            m,
            &[s("u1"), obj(&[("id", s("u2")), ("name", s("n"))])],
            Dialect::Mysql,
        )
        .unwrap();
        assert_eq!(
            p.expect,
            Expect::AfterWrite {
                missing: Some("an update")
            }
        );
        let write = p.before.expect("a write before the read");
        assert_eq!(
            write.sql,
            "UPDATE `kavach_users` SET `id` = ?, `name` = ? WHERE `id` = ?"
        );
        assert!(p.statement.sql.ends_with("WHERE `id` = ? LIMIT ? OFFSET ?"));
        assert_eq!(p.statement.params[0].value, Value::Text("u2".into()));
        let pg = plan(m, &[s("u1"), obj(&[("name", s("n"))])], Dialect::Postgres).unwrap();
        assert!(pg.before.is_none());
        assert!(pg
            .statement
            .sql
            .starts_with("UPDATE \"kavach_users\" SET \"name\" = $1 WHERE \"id\" = $2 RETURNING"));
    }

    #[test]
    fn empty_update_reads_the_row_and_still_requires_it() {
        let m = method_by_name("updateUser").unwrap();
        let p = plan(
            m,
            &[s("u1"), obj(&[("name", JsValue::Undefined)])],
            Dialect::Sqlite,
        )
        .unwrap();
        assert!(p.statement.sql.starts_with("SELECT"));
        assert!(matches!(p.expect, Expect::One { .. }));
        let err = plan(
            m,
            &[s("u1"), obj(&[("banned", JsValue::Null)])],
            Dialect::Sqlite,
        )
        .unwrap_err();
        assert!(err.message.contains("`banned`") && err.message.contains("must not be null"));
    }
}
