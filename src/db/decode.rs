//! From a column value, as a driver hands it over, to the value of its field's type:
//! one set of rules for every provider and for rows that come through a Prisma client.
//! A driver reads each column into a [`Cell`] (choosing its own accessor by the field's
//! type, e.g. SQLite's text conversion for a String field) and [`record`] does the rest.

use std::collections::HashMap;

use super::interpreter::Record;
use crate::error::{KavachError, Result};
use crate::schema::{Field, Model, ScalarType};
use crate::value::{format_iso_millis, parse_stored_date, TimestampFormat, Value};

/// One column of a row as the driver read it, borrowed from the row where it can be.
#[derive(Debug)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(&'a str),
    /// Text the driver already holds as a `String` of its own (moved, not copied).
    Owned(String),
    /// A date the driver decoded itself: milliseconds since the epoch, UTC.
    DateTime(i64),
    /// JSON the driver parsed itself (PostgreSQL's json / jsonb).
    Json(serde_json::Value),
}

/// How each DateTime column of a SQLite database holds its dates (servers have date
/// types of their own and never need this).
#[derive(Debug)]
pub struct DateFormats {
    default: TimestampFormat,
    /// Columns that differ from `default`: (table, field index).
    columns: HashMap<(String, usize), TimestampFormat>,
}

impl DateFormats {
    /// Every column in `default`.
    pub fn uniform(default: TimestampFormat) -> Self {
        DateFormats {
            default,
            columns: HashMap::new(),
        }
    }

    /// Column `field` of `model` holds its dates in `format`.
    pub fn set(&mut self, model: &Model, field: usize, format: TimestampFormat) {
        if format != self.default {
            self.columns.insert((model.table.clone(), field), format);
        }
    }

    pub fn default(&self) -> TimestampFormat {
        self.default
    }

    pub fn of(&self, model: &Model, field: usize) -> TimestampFormat {
        if self.columns.is_empty() {
            return self.default;
        }
        *self
            .columns
            .get(&(model.table.clone(), field))
            .unwrap_or(&self.default)
    }
}

/// A date as a SQLite column stores it.
pub enum StoredDate {
    Text(String),
    Integer(i64),
}

impl DateFormats {
    /// `ms` as it is written to (or compared with) field `field` of `model`; a value
    /// bound to no field takes the default format.
    pub fn store(&self, model: &Model, field: Option<usize>, ms: i64) -> StoredDate {
        let format = field.map_or(self.default, |f| self.of(model, f));
        match format {
            TimestampFormat::Iso8601 => StoredDate::Text(format_iso_millis(ms)),
            TimestampFormat::UnixMillis => StoredDate::Integer(ms),
            TimestampFormat::UnixSeconds => StoredDate::Integer(ms.div_euclid(1000)),
        }
    }
}

/// The format integer dates of field `i` of `model` are read in (none: milliseconds).
pub fn format_of(model: &Model, i: usize, formats: Option<&DateFormats>) -> TimestampFormat {
    match (model.fields[i].ty, formats) {
        (ScalarType::DateTime, Some(formats)) => formats.of(model, i),
        _ => TimestampFormat::UnixMillis,
    }
}

/// A row of `model`: `cell(i, field)` reads column `i`, which holds field `i` (plans
/// select every field in declaration order). Integer dates are read in the format
/// `formats` gives their column (none: epoch milliseconds).
pub fn record<'r>(
    model: &'static Model,
    formats: Option<&DateFormats>,
    mut cell: impl FnMut(usize, &Field) -> Result<Cell<'r>>,
) -> Result<Record> {
    let cells = model
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| value(model, field, format_of(model, i, formats), cell(i, field)?))
        .collect::<Result<_>>()?;
    Ok(Record { model, cells })
}

/// The value of `field` that `cell` holds. Dates and JSON follow what the driver gave
/// (SQLite's storage class); the rest must already be of the field's kind.
pub fn value(model: &Model, field: &Field, format: TimestampFormat, cell: Cell) -> Result<Value> {
    let bad = |what: String| decode_error(model, field, what);
    Ok(match (field.ty, cell) {
        (_, Cell::Null) => Value::Null,
        (ScalarType::String, Cell::Text(s)) => Value::Text(s.to_string()),
        (ScalarType::String, Cell::Owned(s)) => Value::Text(s),
        (ScalarType::Json, Cell::Owned(s)) => Value::JsonText(s),
        (_, Cell::Owned(s)) => return value(model, field, format, Cell::Text(&s)),
        (ScalarType::Int, Cell::Int(n)) => Value::Int(n),
        (ScalarType::Boolean, Cell::Bool(b)) => Value::Bool(b),
        (ScalarType::Boolean, Cell::Int(n)) => Value::Bool(n != 0),
        (ScalarType::DateTime, Cell::DateTime(ms)) => Value::DateTime(ms),
        (ScalarType::DateTime, Cell::Int(n)) => Value::DateTime(format.from_integer(n)),
        (ScalarType::DateTime, Cell::Real(r)) => Value::DateTime(format.from_integer(r as i64)),
        (ScalarType::DateTime, Cell::Text(s)) => Value::DateTime(
            parse_stored_date(s).ok_or_else(|| bad(format!("'{s}' is not a date")))?,
        ),
        // A SQLite JSONB column has NUMERIC affinity: a bare JSON number is stored as a number.
        (ScalarType::Json, Cell::Int(n)) => Value::Json(n.into()),
        (ScalarType::Json, Cell::Real(r)) => {
            Value::Json(serde_json::Number::from_f64(r).map_or(serde_json::Value::Null, Into::into))
        }
        (ScalarType::Json, Cell::Text(s)) => Value::JsonText(s.to_string()),
        (ScalarType::Json, Cell::Json(json)) => Value::Json(json),
        (_, other) => return Err(bad(format!("unexpected value {other:?}"))),
    })
}

/// The error a decode of column `field` of `model` raises when the stored value does not
/// fit the declared type.
pub fn decode_error(model: &Model, field: &Field, what: impl std::fmt::Display) -> KavachError {
    KavachError::database(format!(
        "Cannot read {}.{} (column {}) as {}: {what}",
        model.name,
        field.name,
        field.column,
        field.ty.prisma_name()
    ))
}
