//! Connection URLs as users already write them (Prisma's `file:` form, KavachOS's plain
//! paths, `sqlite:` URLs, `:memory:`), turned into a [`Config`]. Never echoes a password.

use std::path::PathBuf;
use std::time::Duration;

pub const ACCEPTED_FORMS: &str = "':memory:', 'file:./dev.db' (Prisma), './kavach.db' (a plain path), 'sqlite:./kavach.db'";

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A private in-memory database, alive until the adapter closes.
    Memory,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub target: Target,
    /// How long a statement waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// Size of the read pool for file databases.
    pub read_connections: u32,
    pub skip_migrations: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub skip_migrations: bool,
}

pub fn parse(url: &str, options: Options) -> Result<Config, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(format!("createAdapter: the database URL is empty; accepted forms: {ACCEPTED_FORMS}"));
    }
    let (location, query) = split_query(url);
    let location = match scheme(location) {
        None => location,
        Some("file") => location.trim_start_matches("file:").trim_start_matches("//"),
        Some("sqlite") => {
            let rest = location.trim_start_matches("sqlite:");
            // `sqlite:///abs/path` and `sqlite://./rel` are both common.
            match rest.strip_prefix("//") {
                Some(path) if path.starts_with('/') || path.starts_with('.') => path,
                Some(path) => path,
                None => rest,
            }
        }
        Some(other) => {
            return Err(format!(
                "createAdapter: unsupported URL scheme '{other}:' (this build serves SQLite); accepted forms: {ACCEPTED_FORMS}"
            ))
        }
    };
    let target = match location {
        ":memory:" => Target::Memory,
        "" => {
            return Err(format!(
                "createAdapter: the URL names no database file; accepted forms: {ACCEPTED_FORMS}"
            ))
        }
        path => Target::File(PathBuf::from(path)),
    };
    let mut config = Config {
        target,
        busy_timeout: Duration::from_secs(5),
        read_connections: 4,
        skip_migrations: options.skip_migrations,
    };
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match key {
            "socket_timeout" => {
                config.busy_timeout = Duration::from_secs_f64(positive(key, value)?);
            }
            "connection_limit" => {
                config.read_connections = positive(key, value)?.max(1.0) as u32;
            }
            // Prisma documents other parameters (sslmode, schema, ...) that mean nothing
            // for SQLite: accept and ignore them, as Prisma does.
            _ => {}
        }
    }
    Ok(config)
}

fn positive(key: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("createAdapter: URL parameter {key} must be a non-negative number, got '{value}'"))
}

fn split_query(url: &str) -> (&str, &str) {
    match url.split_once('?') {
        Some((location, query)) => (location, query),
        None => (url, ""),
    }
}

/// The URL scheme, if the text has one. One-letter schemes are Windows drive letters.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let valid = scheme.len() > 1
        && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        parse(url, Options::default()).unwrap().target
    }

    #[test]
    fn accepts_the_forms_users_write() {
        assert_eq!(target(":memory:"), Target::Memory);
        assert_eq!(target("sqlite::memory:"), Target::Memory);
        assert_eq!(target("file::memory:"), Target::Memory);
        assert_eq!(target("file:./dev.db"), Target::File("./dev.db".into()));
        assert_eq!(target("file:dev.db?connection_limit=1"), Target::File("dev.db".into()));
        assert_eq!(target("./kavach.db"), Target::File("./kavach.db".into()));
        assert_eq!(target("/tmp/k.db"), Target::File("/tmp/k.db".into()));
        assert_eq!(target("sqlite:./k.db"), Target::File("./k.db".into()));
        assert_eq!(target("sqlite:///tmp/k.db"), Target::File("/tmp/k.db".into()));
        let c = parse("file:./dev.db?socket_timeout=2&connection_limit=3&sslmode=require", Options::default()).unwrap();
        assert_eq!(c.busy_timeout, Duration::from_secs(2));
        assert_eq!(c.read_connections, 3);
    }

    #[test]
    fn refuses_what_it_cannot_serve_without_echoing_secrets() {
        let err = parse("", Options::default()).unwrap_err();
        assert!(err.contains("file:./dev.db"));
        let err = parse("redis://user:hunter2@host/0", Options::default()).unwrap_err();
        assert!(err.contains("'redis:'") && !err.contains("hunter2"));
        assert!(parse("file:x.db?socket_timeout=abc", Options::default()).is_err());
    }
}
