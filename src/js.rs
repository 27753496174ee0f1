//! Conversions across the napi boundary, on the JS thread: JS arguments into owned
//! [`JsValue`] trees, and results (records, Dates, parsed JSON, errors with Prisma's
//! `code` and `meta`) into JS values. Raw N-API calls keep this lean.

use std::ffi::c_char;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};

use crate::db::{Outcome, Record};
use crate::error::KavachError;
use crate::value::{JsValue, Value};

/// JSON nesting deeper than this is refused (and cycles end here too).
const MAX_DEPTH: usize = 128;

pub(crate) fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!(
            "N-API call failed: {what}"
        )))
    }
}

unsafe fn read(env: sys::napi_env, value: sys::napi_value, depth: usize) -> napi::Result<JsValue> {
    let mut ty = 0;
    check(sys::napi_typeof(env, value, &mut ty), "typeof")?;
    Ok(match ty {
        sys::ValueType::napi_undefined => JsValue::Undefined,
        sys::ValueType::napi_null => JsValue::Null,
        sys::ValueType::napi_boolean => {
            let mut b = false;
            check(sys::napi_get_value_bool(env, value, &mut b), "bool")?;
            JsValue::Bool(b)
        }
        sys::ValueType::napi_number => {
            let mut n = 0.0;
            check(sys::napi_get_value_double(env, value, &mut n), "number")?;
            JsValue::Number(n)
        }
        sys::ValueType::napi_string => JsValue::String(read_string(env, value)?),
        sys::ValueType::napi_object if depth >= MAX_DEPTH => {
            JsValue::Other("circular or too deeply nested object")
        }
        sys::ValueType::napi_object => {
            let mut is_date = false;
            check(sys::napi_is_date(env, value, &mut is_date), "is_date")?;
            if is_date {
                let mut ms = 0.0;
                check(sys::napi_get_date_value(env, value, &mut ms), "date")?;
                return Ok(JsValue::Date(ms));
            }
            let mut is_array = false;
            check(sys::napi_is_array(env, value, &mut is_array), "is_array")?;
            if is_array {
                let mut len = 0;
                check(
                    sys::napi_get_array_length(env, value, &mut len),
                    "array length",
                )?;
                let mut items = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let mut item = ptr::null_mut();
                    check(sys::napi_get_element(env, value, i, &mut item), "element")?;
                    items.push(read(env, item, depth + 1)?);
                }
                return Ok(JsValue::Array(items));
            }
            let mut keys = ptr::null_mut();
            check(
                sys::napi_get_all_property_names(
                    env,
                    value,
                    sys::KeyCollectionMode::own_only,
                    sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                    sys::KeyConversion::numbers_to_strings,
                    &mut keys,
                ),
                "property names",
            )?;
            let mut len = 0;
            check(sys::napi_get_array_length(env, keys, &mut len), "key count")?;
            let mut entries = Vec::with_capacity(len as usize);
            for i in 0..len {
                let mut key = ptr::null_mut();
                check(sys::napi_get_element(env, keys, i, &mut key), "key")?;
                let mut item = ptr::null_mut();
                check(
                    sys::napi_get_property(env, value, key, &mut item),
                    "property",
                )?;
                entries.push((read_string(env, key)?, read(env, item, depth + 1)?));
            }
            JsValue::Object(entries)
        }
        sys::ValueType::napi_function => JsValue::Other("function"),
        sys::ValueType::napi_symbol => JsValue::Other("symbol"),
        sys::ValueType::napi_bigint => {
            let mut text = ptr::null_mut();
            check(
                sys::napi_coerce_to_string(env, value, &mut text),
                "bigint text",
            )?;
            JsValue::BigInt(read_string(env, text)?)
        }
        _ => JsValue::Other("external value"),
    })
}

pub(crate) unsafe fn read_string(
    env: sys::napi_env,
    value: sys::napi_value,
) -> napi::Result<String> {
    let mut len = 0;
    check(
        sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len),
        "string length",
    )?;
    let mut buf = vec![0u8; len + 1];
    let mut written = 0;
    check(
        sys::napi_get_value_string_utf8(
            env,
            value,
            buf.as_mut_ptr() as *mut c_char,
            len + 1,
            &mut written,
        ),
        "string",
    )?;
    buf.truncate(written);
    String::from_utf8(buf).map_err(|_| napi::Error::from_reason("string is not valid UTF-8"))
}

/// The positional arguments of a call, read off the JS array the wrapper passes.
pub struct JsArgs(pub Vec<JsValue>);

impl TypeName for JsArgs {
    fn type_name() -> &'static str {
        "unknown[]"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ValidateNapiValue for JsArgs {}

impl FromNapiValue for JsArgs {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        match read(env, value, 0)? {
            JsValue::Array(items) => Ok(JsArgs(items)),
            other => Ok(JsArgs(vec![other])),
        }
    }
}

/// ASCII text (ids, hashes, dates, most names) is copied as Latin-1, skipping V8's
/// UTF-8 decoder.
/// For each model (in schema order), the JS function `index.js` made that builds a row
/// object from the field values.
pub struct RowFactories(pub Vec<sys::napi_value>);

impl TypeName for RowFactories {
    fn type_name() -> &'static str {
        "Function[]"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ValidateNapiValue for RowFactories {}

impl FromNapiValue for RowFactories {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut len = 0;
        check(
            sys::napi_get_array_length(env, value, &mut len),
            "factories",
        )?;
        if len as usize != crate::schema::SCHEMA.models.len() {
            return Err(napi::Error::from_reason(
                "rowFactories must hold one function per model of schemaJson()",
            ));
        }
        let mut factories = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut factory = ptr::null_mut();
            check(
                sys::napi_get_element(env, value, i, &mut factory),
                "factory",
            )?;
            let mut ty = 0;
            check(sys::napi_typeof(env, factory, &mut ty), "typeof")?;
            if ty != sys::ValueType::napi_function {
                return Err(napi::Error::from_reason("rowFactories must hold functions"));
            }
            factories.push(factory);
        }
        Ok(RowFactories(factories))
    }
}

/// `(name, code, message, meta, cause) => Error`, from `index.js`: makes the error a
/// failure rejects with, as an instance of the app's Prisma error classes (or of the ones
/// kavach-native exports under the same names). `cause` is the error a Prisma client
/// threw, when the failure came from one.
pub struct ErrorFactory(pub sys::napi_value);

impl TypeName for ErrorFactory {
    fn type_name() -> &'static str {
        "Function"
    }
    fn value_type() -> ValueType {
        ValueType::Function
    }
}

impl ValidateNapiValue for ErrorFactory {}

impl FromNapiValue for ErrorFactory {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut ty = 0;
        check(sys::napi_typeof(env, value, &mut ty), "typeof")?;
        if ty != sys::ValueType::napi_function {
            return Err(napi::Error::from_reason("errorFactory must be a function"));
        }
        Ok(ErrorFactory(value))
    }
}

/// What results are built with, kept as references for the adapter's life: the row
/// factories, `JSON.parse` and the error factory. Only ever used on the JS thread that
/// made them.
pub struct Builders {
    rows: Vec<sys::napi_ref>,
    json_parse: sys::napi_ref,
    errors: Option<sys::napi_ref>,
}

unsafe impl Send for Builders {}
unsafe impl Sync for Builders {}

impl Builders {
    pub unsafe fn new(
        env: sys::napi_env,
        factories: &RowFactories,
        errors: Option<&ErrorFactory>,
    ) -> napi::Result<Builders> {
        let reference = |value| {
            let mut reference = ptr::null_mut();
            check(
                sys::napi_create_reference(env, value, 1, &mut reference),
                "reference",
            )?;
            Ok::<_, napi::Error>(reference)
        };
        let mut global = ptr::null_mut();
        check(sys::napi_get_global(env, &mut global), "global")?;
        let mut json = ptr::null_mut();
        check(
            sys::napi_get_named_property(env, global, c"JSON".as_ptr(), &mut json),
            "JSON",
        )?;
        let mut parse = ptr::null_mut();
        check(
            sys::napi_get_named_property(env, json, c"parse".as_ptr(), &mut parse),
            "JSON.parse",
        )?;
        Ok(Builders {
            rows: factories
                .0
                .iter()
                .map(|&f| reference(f))
                .collect::<napi::Result<_>>()?,
            json_parse: reference(parse)?,
            errors: match errors {
                Some(factory) => Some(reference(factory.0)?),
                None => None,
            },
        })
    }

    /// Frees the references (the environment is still alive).
    pub unsafe fn delete(&self, env: sys::napi_env) {
        let errors = self.errors.iter();
        for &reference in self.rows.iter().chain([&self.json_parse]).chain(errors) {
            sys::napi_delete_reference(env, reference);
        }
    }
}

pub(crate) unsafe fn string(env: sys::napi_env, s: &str) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    let status = match s.is_ascii() {
        true => sys::napi_create_string_latin1(
            env,
            s.as_ptr() as *const c_char,
            s.len() as isize,
            &mut out,
        ),
        false => sys::napi_create_string_utf8(
            env,
            s.as_ptr() as *const c_char,
            s.len() as isize,
            &mut out,
        ),
    };
    check(status, "create string")?;
    Ok(out)
}

pub(crate) unsafe fn number(env: sys::napi_env, n: f64) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(sys::napi_create_double(env, n, &mut out), "create number")?;
    Ok(out)
}

pub(crate) unsafe fn null(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(sys::napi_get_null(env, &mut out), "null")?;
    Ok(out)
}

pub(crate) unsafe fn undefined(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(sys::napi_get_undefined(env, &mut out), "undefined")?;
    Ok(out)
}

pub(crate) unsafe fn boolean(env: sys::napi_env, b: bool) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(sys::napi_get_boolean(env, b, &mut out), "boolean")?;
    Ok(out)
}

pub(crate) unsafe fn object(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(sys::napi_create_object(env, &mut out), "create object")?;
    Ok(out)
}

pub(crate) unsafe fn set(
    env: sys::napi_env,
    obj: sys::napi_value,
    key: &str,
    value: sys::napi_value,
) -> napi::Result<()> {
    let key = string(env, key)?;
    check(sys::napi_set_property(env, obj, key, value), "set property")
}

unsafe fn define_own(
    env: sys::napi_env,
    obj: sys::napi_value,
    key: &str,
    value: sys::napi_value,
) -> napi::Result<()> {
    let descriptor = sys::napi_property_descriptor {
        utf8name: ptr::null(),
        name: string(env, key)?,
        method: None,
        getter: None,
        setter: None,
        value,
        attributes: PLAIN_PROPERTY,
        data: ptr::null_mut(),
    };
    check(
        sys::napi_define_properties(env, obj, 1, &descriptor),
        "define property",
    )
}

pub(crate) unsafe fn array<T>(
    env: sys::napi_env,
    items: &[T],
    each: impl Fn(&T) -> napi::Result<sys::napi_value>,
) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(
        sys::napi_create_array_with_length(env, items.len(), &mut out),
        "create array",
    )?;
    for (i, item) in items.iter().enumerate() {
        check(
            sys::napi_set_element(env, out, i as u32, each(item)?),
            "set element",
        )?;
    }
    Ok(out)
}

unsafe fn json(env: sys::napi_env, value: &serde_json::Value) -> napi::Result<sys::napi_value> {
    match value {
        serde_json::Value::Null => null(env),
        serde_json::Value::Bool(b) => boolean(env, *b),
        serde_json::Value::Number(n) => number(env, n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => string(env, s),
        serde_json::Value::Array(items) => array(env, items, |item| json(env, item)),
        serde_json::Value::Object(map) => {
            let obj = object(env)?;
            for (key, item) in map {
                let value = json(env, item)?;
                if key == "__proto__" {
                    // As JSON.parse does: an own property, not the prototype setter.
                    define_own(env, obj, key, value)?;
                } else {
                    set(env, obj, key, value)?;
                }
            }
            Ok(obj)
        }
    }
}

unsafe fn cell(
    env: sys::napi_env,
    value: &Value,
    builders: &Builders,
) -> napi::Result<sys::napi_value> {
    match value {
        Value::Null => null(env),
        Value::Bool(b) => boolean(env, *b),
        Value::Int(i) => number(env, *i as f64),
        Value::Text(s) => string(env, s),
        Value::DateTime(ms) => {
            let mut out = ptr::null_mut();
            check(
                sys::napi_create_date(env, *ms as f64, &mut out),
                "create date",
            )?;
            Ok(out)
        }
        Value::JsonText(text) => parse_json(env, text, builders),
        Value::Json(j) => json(env, j),
    }
}

/// JSON text from a column, parsed as Prisma parses it: with `JSON.parse`.
unsafe fn parse_json(
    env: sys::napi_env,
    text: &str,
    builders: &Builders,
) -> napi::Result<sys::napi_value> {
    let mut parse = ptr::null_mut();
    check(
        sys::napi_get_reference_value(env, builders.json_parse, &mut parse),
        "JSON.parse",
    )?;
    let argument = string(env, text)?;
    let mut out = ptr::null_mut();
    let status = sys::napi_call_function(env, undefined(env)?, parse, 1, &argument, &mut out);
    if status != sys::Status::napi_ok {
        let mut thrown = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut thrown);
        return Err(napi::Error::from_reason("invalid JSON"));
    }
    Ok(out)
}

/// Most fields a model has (KavachUser: 25).
const MAX_FIELDS: usize = 64;

/// A row as a plain object, made by its model's factory from the cell values.
unsafe fn record(
    env: sys::napi_env,
    record: &Record,
    builders: &Builders,
) -> napi::Result<sys::napi_value> {
    let mut values = [ptr::null_mut(); MAX_FIELDS];
    let count = record.cells.len();
    if count > MAX_FIELDS {
        return Err(napi::Error::from_reason(
            "a model has more fields than rows support",
        ));
    }
    let fields = record.model.fields.iter();
    for ((slot, value), field) in values.iter_mut().zip(&record.cells).zip(fields) {
        *slot = cell(env, value, builders).map_err(|e| {
            napi::Error::from_reason(format!(
                "Cannot read {}.{} (column {}) as {}: {}",
                record.model.name,
                field.name,
                field.column,
                field.ty.prisma_name(),
                e.reason
            ))
        })?;
    }
    let mut factory = ptr::null_mut();
    check(
        sys::napi_get_reference_value(env, builders.rows[record.model.position], &mut factory),
        "row factory",
    )?;
    let mut out = ptr::null_mut();
    check(
        sys::napi_call_function(
            env,
            undefined(env)?,
            factory,
            count,
            values.as_ptr(),
            &mut out,
        ),
        "build row",
    )?;
    Ok(out)
}

/// What an assignment or JSON.parse creates: writable, enumerable, configurable.
const PLAIN_PROPERTY: sys::napi_property_attributes = sys::PropertyAttributes::writable
    | sys::PropertyAttributes::enumerable
    | sys::PropertyAttributes::configurable;

/// Prisma's `meta` of a failure, or `None` when it has none.
unsafe fn meta(env: sys::napi_env, err: &KavachError) -> napi::Result<Option<sys::napi_value>> {
    let meta = &err.meta;
    if *meta == crate::error::Meta::default() {
        return Ok(None);
    }
    let obj = object(env)?;
    if let Some(model) = &meta.model_name {
        set(env, obj, "modelName", string(env, model)?)?;
    }
    if let Some(target) = &meta.target {
        set(env, obj, "target", array(env, target, |t| string(env, t))?)?;
    }
    if let Some(operation) = &meta.operation {
        set(env, obj, "operation", string(env, operation)?)?;
    }
    match meta.missing.as_deref() {
        Some(crate::error::Missing::Table(table)) => set(env, obj, "table", string(env, table)?)?,
        Some(crate::error::Missing::Column(column)) => {
            set(env, obj, "column", string(env, column)?)?
        }
        None => {}
    }
    Ok(Some(obj))
}

/// The JS error for a failure: made by the error factory (an instance of Prisma's class
/// for it, with `code`, `meta` and `clientVersion`), or without one a plain `Error` with
/// Prisma's `name`, `code` and `meta` as real properties. `cause` is the error a Prisma
/// client threw for it, if any.
pub(crate) unsafe fn error(
    env: sys::napi_env,
    err: &KavachError,
    builders: &Builders,
    cause: Option<sys::napi_value>,
) -> napi::Result<sys::napi_value> {
    let code = match err.code() {
        Some(code) => string(env, code)?,
        None => undefined(env)?,
    };
    let message = string(env, &err.message)?;
    let meta = meta(env, err)?;
    if let Some(factory) = builders.errors {
        let mut function = ptr::null_mut();
        check(
            sys::napi_get_reference_value(env, factory, &mut function),
            "error factory",
        )?;
        let arguments = [
            string(env, err.js_name())?,
            code,
            message,
            meta.map_or_else(|| undefined(env), Ok)?,
            cause.map_or_else(|| undefined(env), Ok)?,
        ];
        let mut out = ptr::null_mut();
        let status = sys::napi_call_function(
            env,
            undefined(env)?,
            function,
            arguments.len(),
            arguments.as_ptr(),
            &mut out,
        );
        if status == sys::Status::napi_ok {
            return Ok(out);
        }
        let mut thrown = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut thrown);
    }
    let mut out = ptr::null_mut();
    let code = match err.code() {
        Some(_) => code,
        None => ptr::null_mut(),
    };
    check(
        sys::napi_create_error(env, code, message, &mut out),
        "create error",
    )?;
    set(env, out, "name", string(env, err.js_name())?)?;
    if let Some(meta) = meta {
        set(env, out, "meta", meta)?;
    }
    Ok(out)
}

/// The JS value of a call's result.
pub(crate) unsafe fn outcome(
    env: sys::napi_env,
    outcome: &Outcome,
    builders: &Builders,
) -> napi::Result<sys::napi_value> {
    match outcome {
        Outcome::Nothing => undefined(env),
        Outcome::Null => null(env),
        Outcome::Count(n) => number(env, *n as f64),
        Outcome::Record(r) => record(env, r, builders),
        Outcome::Records(rs) => array(env, rs, |r| record(env, r, builders)),
        Outcome::Strings(items) => array(env, items, |s| string(env, s)),
    }
}

/// Resolves `deferred` with the result, or rejects it with the Prisma-shaped error.
pub unsafe fn settle(
    env: sys::napi_env,
    deferred: sys::napi_deferred,
    result: Result<Outcome, KavachError>,
    builders: &Builders,
) {
    let settled = match &result {
        Ok(value) => outcome(env, value, builders).map(|v| (true, v)),
        Err(err) => error(env, err, builders, None).map(|v| (false, v)),
    };
    let (resolve, value) = match settled {
        Ok(settled) => settled,
        Err(failure) => {
            let fallback = KavachError::database(failure.reason);
            match error(env, &fallback, builders, None) {
                Ok(value) => (false, value),
                Err(_) => (false, ptr::null_mut()),
            }
        }
    };
    if resolve {
        sys::napi_resolve_deferred(env, deferred, value);
    } else {
        sys::napi_reject_deferred(env, deferred, value);
    }
}
