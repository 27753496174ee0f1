//! Running statements on a SQLite connection's own handle, on the thread that owns it —
//! this handle is SQLite's [`Queryable`](crate::db::interpreter::Queryable), its futures
//! never wait: prepared statements cached by SQL text, parameters bound in the format of
//! their column, rows read straight off the statement. sqlx opens and configures the
//! connection; its handle is then locked out of sqlx's worker for good, so a call
//! costs no hop through that worker and no channel send per row.

use std::collections::HashMap;
use std::ffi::{c_int, CStr};
use std::ptr;

use libsqlite3_sys as ffi;

use crate::db::decode::{self, decode_error, Cell, DateFormats, StoredDate};
use crate::db::interpreter::{Connection, Queryable, Record};
use crate::error::{map_database_error, ErrorContext, KavachError, Result};
use crate::plan::Statement;
use crate::schema::{Field, Model, ScalarType};
use crate::value::Value;

/// Prepared statements kept per connection; beyond this the cache starts over.
const STATEMENT_CACHE: usize = 512;

pub(super) struct RawConnection {
    db: *mut ffi::sqlite3,
    statements: HashMap<String, *mut ffi::sqlite3_stmt>,
    formats: std::sync::Arc<DateFormats>,
}

// The handle and its statements are used by one thread at a time (the executor thread
// that locked them); SQLite's multi-thread mode allows that.
unsafe impl Send for RawConnection {}

impl RawConnection {
    /// # Safety
    /// `db` must stay open, and be used by nothing else, for as long as this lives.
    pub(super) unsafe fn new(db: *mut ffi::sqlite3, formats: std::sync::Arc<DateFormats>) -> Self {
        RawConnection {
            db,
            statements: HashMap::new(),
            formats,
        }
    }

    /// Is a transaction open on this connection?
    pub(super) fn in_transaction(&self) -> bool {
        unsafe { ffi::sqlite3_get_autocommit(self.db) == 0 }
    }

    fn error(&self, ctx: Option<&ErrorContext>) -> KavachError {
        let (code, message) = unsafe {
            let code = ffi::sqlite3_extended_errcode(self.db);
            let message = CStr::from_ptr(ffi::sqlite3_errmsg(self.db)).to_string_lossy();
            (code, message.into_owned())
        };
        let unique = matches!(
            code,
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        );
        map_database_error(&code.to_string(), &message, unique, ctx)
    }

    fn prepared(
        &mut self,
        sql: &str,
        ctx: Option<&ErrorContext>,
    ) -> Result<*mut ffi::sqlite3_stmt> {
        if let Some(&stmt) = self.statements.get(sql) {
            return Ok(stmt);
        }
        if self.statements.len() >= STATEMENT_CACHE {
            self.finalize_all();
        }
        let mut stmt = ptr::null_mut();
        let status = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if status != ffi::SQLITE_OK {
            return Err(self.error(ctx));
        }
        self.statements.insert(sql.to_string(), stmt);
        Ok(stmt)
    }

    /// Finalizes every cached statement (before the connection closes).
    pub(super) fn finalize_all(&mut self) {
        for (_, stmt) in self.statements.drain() {
            unsafe { ffi::sqlite3_finalize(stmt) };
        }
    }

    fn bind(
        &self,
        stmt: *mut ffi::sqlite3_stmt,
        statement: &Statement,
        model: &Model,
    ) -> Result<()> {
        for (i, bound) in statement.params.iter().enumerate() {
            let index = i as c_int + 1;
            let text = |s: &str| unsafe {
                ffi::sqlite3_bind_text(
                    stmt,
                    index,
                    s.as_ptr().cast(),
                    s.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                )
            };
            let int = |n: i64| unsafe { ffi::sqlite3_bind_int64(stmt, index, n) };
            let status = match &bound.value {
                Value::Null => unsafe { ffi::sqlite3_bind_null(stmt, index) },
                Value::Bool(b) => int(i64::from(*b)),
                Value::Int(n) => int(*n),
                Value::Text(s) | Value::JsonText(s) => text(s),
                Value::DateTime(ms) => match self.formats.store(model, bound.field, *ms) {
                    StoredDate::Text(iso) => text(&iso),
                    StoredDate::Integer(n) => int(n),
                },
                Value::Json(json) => text(&json.to_string()),
            };
            if status != ffi::SQLITE_OK {
                return Err(self.error(None));
            }
        }
        Ok(())
    }

    /// Binds, steps through every row (handing each to `row`), and resets the statement
    /// for its next use whatever happened.
    fn run(
        &mut self,
        statement: &Statement,
        model: &'static Model,
        mut row: impl FnMut(*mut ffi::sqlite3_stmt) -> Result<()>,
    ) -> Result<()> {
        let ctx = ErrorContext { model };
        let stmt = self.prepared(&statement.sql, Some(&ctx))?;
        let result = self.bind(stmt, statement, model).and_then(|()| loop {
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => row(stmt)?,
                ffi::SQLITE_DONE => return Ok(()),
                _ => return Err(self.error(Some(&ctx))),
            }
        });
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        result
    }

    /// Runs a write; answers how many rows it changed.
    pub(super) fn execute(&mut self, statement: &Statement, model: &'static Model) -> Result<u64> {
        self.run(statement, model, |_| Ok(()))?;
        Ok(unsafe { ffi::sqlite3_changes64(self.db) } as u64)
    }

    /// Runs a query whose columns are `model`'s fields in declaration order.
    pub(super) fn fetch(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> Result<Vec<Record>> {
        let formats = std::sync::Arc::clone(&self.formats);
        let mut records = Vec::new();
        self.run(statement, model, |stmt| {
            let record = decode::record(model, Some(&formats), |i, field| unsafe {
                read_cell(stmt, i as c_int, model, field)
            })?;
            records.push(record);
            Ok(())
        })?;
        Ok(records)
    }

    /// Runs one SQL statement without parameters (transaction control).
    pub(super) fn raw(&mut self, sql: &str) -> Result<()> {
        let stmt = self.prepared(sql, None)?;
        let status = unsafe { ffi::sqlite3_step(stmt) };
        let result = match status {
            ffi::SQLITE_DONE | ffi::SQLITE_ROW => Ok(()),
            _ => Err(self.error(None)),
        };
        unsafe { ffi::sqlite3_reset(stmt) };
        result
    }
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        self.finalize_all();
    }
}

unsafe fn column_text<'a>(
    stmt: *mut ffi::sqlite3_stmt,
    i: c_int,
) -> std::result::Result<&'a str, String> {
    let text = ffi::sqlite3_column_text(stmt, i);
    let len = ffi::sqlite3_column_bytes(stmt, i) as usize;
    if text.is_null() {
        return Ok("");
    }
    std::str::from_utf8(std::slice::from_raw_parts(text, len)).map_err(|e| e.to_string())
}

/// One column of the current row, read for the field's type: strings, integers and
/// booleans take SQLite's own conversion; dates and JSON follow the value's storage class.
unsafe fn read_cell<'a>(
    stmt: *mut ffi::sqlite3_stmt,
    i: c_int,
    model: &Model,
    field: &Field,
) -> Result<Cell<'a>> {
    let storage = ffi::sqlite3_column_type(stmt, i);
    if storage == ffi::SQLITE_NULL {
        return Ok(Cell::Null);
    }
    let text = || column_text(stmt, i).map_err(|what| decode_error(model, field, what));
    let int = || ffi::sqlite3_column_int64(stmt, i);
    Ok(match (field.ty, storage) {
        (ScalarType::String, _) => Cell::Text(text()?),
        (ScalarType::Int | ScalarType::Boolean, _) => Cell::Int(int()),
        (ScalarType::DateTime | ScalarType::Json, ffi::SQLITE_INTEGER) => Cell::Int(int()),
        (ScalarType::DateTime | ScalarType::Json, ffi::SQLITE_FLOAT) => {
            Cell::Real(ffi::sqlite3_column_double(stmt, i))
        }
        (ScalarType::DateTime | ScalarType::Json, _) => Cell::Text(text()?),
    })
}

impl Queryable for RawConnection {
    fn query(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> impl std::future::Future<Output = Result<Vec<Record>>> + Send {
        std::future::ready(self.fetch(statement, model))
    }

    fn execute(
        &mut self,
        statement: &Statement,
        model: &'static Model,
    ) -> impl std::future::Future<Output = Result<u64>> + Send {
        std::future::ready(RawConnection::execute(self, statement, model))
    }
}

impl Connection for RawConnection {
    fn raw(&mut self, sql: &str) -> impl std::future::Future<Output = Result<()>> + Send {
        std::future::ready(RawConnection::raw(self, sql))
    }
}
