//! Values as they travel between JS and the database: the JS input tree, the bound and
//! decoded SQL values, and the text encodings Prisma 7 uses on disk (ISO dates with
//! `+00:00`, `JSON.stringify` text).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};

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
    /// JSON as text: to store (already in `JSON.stringify` form), or as a column held
    /// it (parsed on the JS thread with `JSON.parse`, as Prisma does).
    JsonText(String),
    /// JSON a driver decoded (PostgreSQL's json/jsonb, SQLite's bare numbers).
    Json(serde_json::Value),
}

/// How a SQLite column holds dates: Prisma 7's ISO text (default), epoch milliseconds
/// (Prisma's Rust engine; the driver adapter's `timestampFormat: 'unixepoch-ms'`) or
/// epoch seconds (KavachOS core's Drizzle tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    Iso8601,
    UnixMillis,
    UnixSeconds,
}

impl TimestampFormat {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "iso8601" => Some(Self::Iso8601),
            "unixepoch-ms" => Some(Self::UnixMillis),
            "unixepoch-s" => Some(Self::UnixSeconds),
            _ => None,
        }
    }

    /// Milliseconds from a stored integer.
    pub fn from_integer(self, n: i64) -> i64 {
        match self {
            Self::UnixSeconds => n.saturating_mul(1000),
            _ => n,
        }
    }
}

/// Can this instant be stored? A JS `Date` reaches ±8.64e15 ms (year 275760); the date
/// library here stops at year ±262143, so the last few millennia are refused on input.
pub fn storable_date(ms: f64) -> bool {
    ms.is_finite() && DateTime::from_timestamp_millis(ms as i64).is_some()
}

/// The UTC date-time of an instant, for drivers that bind chrono values. Dates are
/// range-checked on input; the clamp only keeps this total.
pub fn naive_utc_millis(ms: i64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or(if ms < 0 {
            DateTime::<chrono::Utc>::MIN_UTC
        } else {
            DateTime::<chrono::Utc>::MAX_UTC
        })
        .naive_utc()
}

/// Formats like `Date.prototype.toISOString` with `Z` written as `+00:00`, which is what
/// Prisma 7's SQLite driver adapter stores. Total over every `i64` (no date library
/// range to fall out of): years outside 0000–9999 get a sign and six digits, as in JS.
pub fn format_iso_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let year_text = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!(
            "{}{:06}",
            if year < 0 { '-' } else { '+' },
            year.unsigned_abs()
        )
    };
    format!(
        "{year_text}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an ISO-8601 / RFC 3339 date-time with an offset (what Prisma accepts as a
/// DateTime input), including the six-digit signed years `toISOString` writes outside
/// 0000–9999. Sub-millisecond digits are dropped, as a JS `Date` would.
pub fn parse_iso_input(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(ms) = parse_extended_year(text) {
        return Some(ms);
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// `+010000-01-01T00:00:00.000Z` / `-000001-...`: RFC 3339 allows only four-digit years.
fn parse_extended_year(text: &str) -> Option<i64> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let year: i32 = text.get(1..7)?.parse().ok()?;
    let rest = text.get(7..)?;
    // Parse the rest against a leap year placeholder, then move to the real year.
    let placeholder = DateTime::parse_from_rfc3339(&format!("2000{rest}")).ok()?;
    let naive = placeholder.naive_utc();
    let date = NaiveDate::from_ymd_opt(sign * year, naive.month(), naive.day())?;
    let offset_shift = placeholder.naive_local() - naive;
    let local = date.and_time(placeholder.naive_local().time());
    Some((local - offset_shift).and_utc().timestamp_millis())
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
    let (digits, n_exp) = shortest_digits(n.abs());
    let k = digits.len() as i32;
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

/// The shortest digits that read back as `x` (> 0) and the decimal exponent `n` with
/// x ≈ 0.d1d2… × 10^n, choosing as ECMAScript does between two equally short candidates:
/// the one closer to the exact value, and on an exact tie the even one (Rust's shortest
/// formatting may round a tie the other way).
fn shortest_digits(x: f64) -> (String, i32) {
    let split = |sci: &str| -> (String, i32) {
        let (mantissa, exp) = sci
            .split_once('e')
            .expect("LowerExp always has an exponent");
        let digits = mantissa.chars().filter(|c| *c != '.').collect();
        (
            digits,
            exp.parse::<i32>().expect("LowerExp exponent is an integer") + 1,
        )
    };
    let (digits, n) = split(&format!("{x:e}"));
    let k = digits.len();
    if k < 16 {
        return (digits, n);
    }
    // The exact decimal value of `x` (every double has a finite one, at most 767 digits).
    let (exact, exact_n) = split(&format!("{x:.800e}"));
    if exact_n != n {
        return (digits, n);
    }
    let (head, rest) = exact.split_at(k);
    let reads_back = |candidate: &str| format!("0.{candidate}e{n}").parse::<f64>().ok() == Some(x);
    let below = head.to_string();
    let above = increment_digits(head);
    let (Some(above), true) = (above, reads_back(&below)) else {
        return (digits, n);
    };
    if !reads_back(&above) {
        return (below, n);
    }
    let rest = rest.trim_end_matches('0');
    let pick_below = match rest.cmp("5") {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => below.as_bytes()[k - 1] % 2 == 0,
    };
    let pick = if pick_below { below } else { above };
    let trimmed = pick.trim_end_matches('0');
    (
        if trimmed.is_empty() {
            pick
        } else {
            trimmed.to_string()
        },
        n,
    )
}

/// `digits` + 1 in its last place, or None when it would need another digit.
fn increment_digits(digits: &str) -> Option<String> {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).ok();
        }
    }
    None
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

/// The largest time value a JS `Date` holds (ECMAScript's ±8.64e15 ms).
const MAX_JS_DATE_MS: f64 = 8.64e15;

/// Writes `value`; returns false where `JSON.stringify` would skip it (`undefined`).
/// What Prisma refuses inside a Json value is refused here too: an invalid Date, a
/// function, a symbol.
fn write_json(value: &JsValue, out: &mut String) -> Result<bool, JsonError> {
    match value {
        JsValue::Undefined => return Ok(false),
        JsValue::Other(kind) => return Err(JsonError(format!("a {kind}"))),
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) if n.is_finite() => out.push_str(&js_number_text(*n)),
        JsValue::Number(_) => out.push_str("null"),
        JsValue::String(s) => write_json_string(s, out),
        // Prisma serialises a BigInt inside Json as its decimal string.
        JsValue::BigInt(digits) => write_json_string(digits, out),
        // Prisma 7 refuses the very last instant a Date holds (measured: 8.64e15 ms is
        // refused, 8.3e15 and -8.64e15 are stored) inside Json.
        JsValue::Date(ms) if *ms >= MAX_JS_DATE_MS => {
            return Err(JsonError("a Date at the end of the JS date range".into()))
        }
        // As `JSON.stringify` writes it (`toISOString`), over the whole range of a Date.
        JsValue::Date(ms) if ms.is_finite() => {
            let iso = format_iso_millis(*ms as i64).replace("+00:00", "Z");
            write_json_string(&iso, out)
        }
        JsValue::Date(_) => return Err(JsonError("an invalid Date".into())),
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
            (-1764095784164965.2, "-1764095784164965.2"),
            (0.9666666666666667, "0.9666666666666667"),
            (123456789012345680000.0, "123456789012345680000"),
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
            (
                "s".into(),
                JsValue::String("é\u{2028}\"\u{1}</script>".into()),
            ),
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
    fn iso_text_over_the_whole_js_date_range() {
        assert_eq!(
            format_iso_millis(8_640_000_000_000_000),
            "+275760-09-13T00:00:00.000+00:00"
        );
        assert_eq!(
            format_iso_millis(-8_640_000_000_000_000),
            "-271821-04-20T00:00:00.000+00:00"
        );
        assert_eq!(
            format_iso_millis(-62_167_219_200_001),
            "-000001-12-31T23:59:59.999+00:00"
        );
        assert_eq!(
            format_iso_millis(951_782_400_000),
            "2000-02-29T00:00:00.000+00:00"
        );
        let _ = format_iso_millis(i64::MIN);
        let _ = format_iso_millis(i64::MAX);
        let deep = JsValue::Array(vec![JsValue::Object(vec![(
            "d".into(),
            JsValue::Date(8.64e15),
        )])]);
        assert!(json_text(&deep).is_err());
        assert!(json_text(&JsValue::Array(vec![JsValue::Date(f64::NAN)])).is_err());
        assert!(json_text(&JsValue::Object(vec![(
            "f".into(),
            JsValue::Other("function")
        )]))
        .is_err());
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
        assert!(!storable_date(8.64e15) && storable_date(8.2e15) && !storable_date(f64::NAN));
        for ms in [
            253402300800000_i64,
            -62198755200000,
            8.2e15 as i64,
            -8.2e15 as i64,
        ] {
            let text = format_iso_millis(ms);
            assert_eq!(parse_stored_date(&text), Some(ms), "{text}");
        }
        assert_eq!(
            parse_iso_input("+010000-01-01T00:00:00.000Z"),
            Some(253402300800000)
        );
    }
}
