//! Values as they travel between JS and the database: the JS input tree, the bound and
//! decoded SQL values, and the text encodings Prisma 7 uses on disk (ISO dates with
//! `+00:00`, `JSON.stringify` text).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};

/// A JS value read off the JS thread, owned so it can travel to the database task.
#[derive(Debug, Clone, PartialEq)]
pub enum JsValue {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// A `Date`, as its `getTime()` (NaN for an invalid date).
    Date(f64),
    Array(Vec<JsValue>),
    Object(Vec<(String, JsValue)>),
    /// A `BigInt`, as its decimal text.
    BigInt(String),
    /// Anything JSON cannot hold (function, symbol, bigint, ...): its `typeof`.
    Other(&'static str),
}

impl JsValue {
    /// What the value is, for error messages.
    pub fn describe(&self) -> String {
        match self {
            JsValue::Undefined => "undefined".into(),
            JsValue::Null => "null".into(),
            JsValue::Bool(b) => format!("boolean {b}"),
            JsValue::Number(n) => format!("number {}", js_number_text(*n)),
            JsValue::String(s) if s.chars().count() > 40 => "a string".into(),
            JsValue::String(s) => format!("string {s:?}"),
            JsValue::Date(_) => "a Date".into(),
            JsValue::Array(_) => "an array".into(),
            JsValue::Object(_) => "an object".into(),
            JsValue::BigInt(b) => format!("BigInt {b}n"),
            JsValue::Other(kind) => format!("a {kind}"),
        }
    }
}

/// A value bound to a statement parameter or decoded from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    /// Milliseconds since the Unix epoch, UTC — exactly what a JS `Date` holds.
    DateTime(i64),
    /// JSON to store, already in `JSON.stringify` form.
    JsonText(String),
    /// JSON decoded from a row.
    Json(serde_json::Value),
}

/// Largest |time| a JS `Date` can hold, in milliseconds.
pub const MAX_DATE_MS: f64 = 8.64e15;

/// Formats like `Date.prototype.toISOString` with `Z` written as `+00:00`, which is what
/// Prisma 7's SQLite driver adapter stores.
pub fn format_iso_millis(ms: i64) -> String {
    let dt = DateTime::from_timestamp_millis(ms)
        .expect("dates are range-checked on input")
        .naive_utc();
    let year = dt.year();
    let year_text = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{}{:06}", if year < 0 { '-' } else { '+' }, year.abs())
    };
    format!(
        "{year_text}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.and_utc().timestamp_subsec_millis()
    )
}

/// Parses an ISO-8601 / RFC 3339 date-time with an offset (what Prisma accepts as a
/// DateTime input). Sub-millisecond digits are dropped, as a JS `Date` would.
pub fn parse_iso_input(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Parses a stored date: RFC 3339 with offset, or a naive `YYYY-MM-DD[ T]HH:MM:SS[.fff]`
/// / `YYYY-MM-DD` taken as UTC (what other tools and SQLite's own functions write).
pub fn parse_stored_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(ms) = parse_iso_input(text) {
        return Some(ms);
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(Default::default()).and_utc().timestamp_millis())
}

/// `Number.prototype.toString()` for finite numbers, which `JSON.stringify` uses:
/// shortest round-trip digits, integers without `.0`, exponents from 1e21 and below 1e-6.
pub fn js_number_text(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp always has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n_exp = exp.parse::<i32>().expect("LowerExp exponent is an integer") + 1;
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= n_exp && n_exp <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n_exp - k) as usize));
    } else if 0 < n_exp && n_exp <= 21 {
        out.push_str(&digits[..n_exp as usize]);
        out.push('.');
        out.push_str(&digits[n_exp as usize..]);
    } else if -6 < n_exp && n_exp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n_exp) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n_exp - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n_exp - 1).abs().to_string());
    }
    out
}

/// Why a value cannot be written as JSON: `JSON.stringify` would return `undefined`
/// (undefined, a function, ...) or the value is circular / too deeply nested.
#[derive(Debug, PartialEq)]
pub struct JsonError(pub String);

/// `JSON.stringify(value)` for a value read from JS.
pub fn json_text(value: &JsValue) -> Result<String, JsonError> {
    let mut out = String::new();
    if !write_json(value, &mut out)? {
        return Err(JsonError(value.describe()));
    }
    Ok(out)
}

/// Writes `value`; returns false where `JSON.stringify` would skip it.
fn write_json(value: &JsValue, out: &mut String) -> Result<bool, JsonError> {
    match value {
        JsValue::Undefined => return Ok(false),
        JsValue::Other("function" | "symbol") => return Ok(false),
        JsValue::Other(kind) => return Err(JsonError(format!("a {kind}"))),
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) if n.is_finite() => out.push_str(&js_number_text(*n)),
        JsValue::Number(_) => out.push_str("null"),
        JsValue::String(s) => write_json_string(s, out),
        // Prisma serialises a BigInt inside Json as its decimal string.
        JsValue::BigInt(digits) => write_json_string(digits, out),
        JsValue::Date(ms) if ms.is_finite() => {
            let iso = format_iso_millis(*ms as i64).replace("+00:00", "Z");
            write_json_string(&iso, out)
        }
        JsValue::Date(_) => out.push_str("null"),
        JsValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_json(item, out)? {
                    out.push_str("null");
                }
            }
            out.push(']');
        }
        JsValue::Object(entries) => {
            out.push('{');
            let mut first = true;
            for (key, item) in entries {
                let mark = out.len();
                if !first {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                if write_json(item, out)? {
                    first = false;
                } else {
                    out.truncate(mark);
                }
            }
            out.push('}');
        }
    }
    Ok(true)
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        let cases = [
            (2.0, "2"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123456789.125, "123456789.125"),
            (-3.25e-10, "-3.25e-10"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (n, text) in cases {
            assert_eq!(js_number_text(n), text, "{n:e}");
        }
    }

    #[test]
    fn json_text_follows_json_stringify() {
        let value = JsValue::Object(vec![
            ("b".into(), JsValue::Number(1.0)),
            ("a".into(), JsValue::Number(2.0)),
            ("skip".into(), JsValue::Undefined),
            (
                "list".into(),
                JsValue::Array(vec![JsValue::Undefined, JsValue::Number(f64::NAN)]),
            ),
            ("s".into(), JsValue::String("é\u{2028}\"\u{1}</script>".into())),
            ("d".into(), JsValue::Date(0.0)),
        ]);
        assert_eq!(
            json_text(&value).unwrap(),
            "{\"b\":1,\"a\":2,\"list\":[null,null],\"s\":\"é\u{2028}\\\"\\u0001</script>\",\"d\":\"1970-01-01T00:00:00.000Z\"}"
        );
        assert_eq!(
            json_text(&JsValue::Object(vec![("x".into(), JsValue::Undefined)])).unwrap(),
            "{}"
        );
        assert!(json_text(&JsValue::Undefined).is_err());
        assert_eq!(json_text(&JsValue::BigInt("1".into())).unwrap(), "\"1\"");
    }

    #[test]
    fn dates_round_trip_in_prisma_sqlite_form() {
        let ms = parse_iso_input("2025-01-02T03:04:05.678Z").unwrap();
        assert_eq!(format_iso_millis(ms), "2025-01-02T03:04:05.678+00:00");
        assert_eq!(parse_stored_date("2025-01-02T03:04:05.678+00:00"), Some(ms));
        assert_eq!(parse_stored_date("2025-01-02 03:04:05.678"), Some(ms));
        assert_eq!(
            parse_iso_input("2025-01-02T05:04:05.678+02:00"),
            Some(ms),
            "offsets are honoured"
        );
        assert_eq!(format_iso_millis(-1), "1969-12-31T23:59:59.999+00:00");
        assert_eq!(parse_iso_input("yesterday"), None);
    }
}
