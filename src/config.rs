//! Connection URLs as users already write them (Prisma's `file:` form, KavachOS's plain
//! paths, `sqlite:` URLs, `:memory:`, `postgresql://`, `mysql://`) and the Prisma query
//! parameters that apply, turned into a [`Config`]. Never echoes a password.

use std::path::PathBuf;
use std::time::Duration;

use crate::value::TimestampFormat;

pub const ACCEPTED_FORMS: &str = "':memory:', 'file:./dev.db' (Prisma), './kavach.db' (a plain path), 'sqlite:./kavach.db', 'postgresql://user:password@host:5432/db', 'mysql://user:password@host:3306/db'";

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A private in-memory database, alive until the adapter closes.
    Memory,
    File(PathBuf),
    Postgres(Server),
    Mysql(Server),
}

/// A database server and the Prisma URL parameters that apply to it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// Unix socket path (MySQL `socket`, or PostgreSQL `host=/path`).
    pub socket: Option<String>,
    pub user: String,
    /// Kept out of every message and of `Debug` output elsewhere.
    pub password: Option<String>,
    pub database: Option<String>,
    /// PostgreSQL `schema`: the search path.
    pub schema: Option<String>,
    pub connection_limit: Option<u32>,
    pub pool_timeout: Duration,
    pub connect_timeout: Duration,
    pub socket_timeout: Option<Duration>,
    /// PostgreSQL `sslmode`; MySQL `sslaccept` (strict / accept_invalid_certs).
    pub ssl_mode: Option<String>,
    pub ssl_root_cert: Option<String>,
    pub ssl_cert: Option<String>,
    pub ssl_key: Option<String>,
    /// PostgreSQL `pgbouncer=true`: no named prepared statements.
    pub pgbouncer: bool,
    pub statement_cache_size: Option<usize>,
    pub application_name: Option<String>,
}

impl Server {
    /// `host:port` (or the socket path) for messages: never the password.
    pub fn location(&self) -> String {
        match &self.socket {
            Some(path) => format!("socket {path}"),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// One reader per core, at most 4: each reader keeps its own copy of the pages it
/// reads, and more copies than the CPU caches hold make every scan slower (10k-row
/// scan on 2 vCPUs: 430 µs with 1 reader, 520 with 2, 1,250 with 3).
fn default_read_connections() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4) as u32)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub target: Target,
    /// How long a statement waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// Reader threads (each with its own connection) for file databases.
    pub read_connections: u32,
    pub skip_migrations: bool,
    /// SQLite: how dates are written; `None` detects it per column from existing data.
    pub timestamp_format: Option<TimestampFormat>,
    /// PostgreSQL read replicas (`replicas` option); each takes the primary's `schema`
    /// unless its own URL names one.
    pub replicas: Vec<Server>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub skip_migrations: bool,
    pub timestamp_format: Option<TimestampFormat>,
    pub replicas: Vec<String>,
}

pub fn parse(url: &str, options: Options) -> Result<Config, String> {
    let mut config = parse_primary(url, &options)?;
    if options.replicas.is_empty() {
        return Ok(config);
    }
    let Target::Postgres(primary) = &config.target else {
        return Err("createAdapter: `replicas` are available on PostgreSQL only (MySQL/MariaDB and SQLite replicas are not done)".into());
    };
    for replica in &options.replicas {
        let mut server = match scheme(replica.trim()) {
            Some("postgres" | "postgresql") => server_config(replica.trim(), 5432)?,
            _ => {
                return Err("createAdapter: each of `replicas` must be a postgresql:// URL".into())
            }
        };
        if server.schema.is_none() {
            server.schema.clone_from(&primary.schema);
        }
        config.replicas.push(server);
    }
    Ok(config)
}

fn parse_primary(url: &str, options: &Options) -> Result<Config, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(format!(
            "createAdapter: the database URL is empty; accepted forms: {ACCEPTED_FORMS}"
        ));
    }
    let (location, query) = split_query(url);
    let location = match scheme(location) {
        None => location,
        Some("file") => location
            .trim_start_matches("file:")
            .trim_start_matches("//"),
        Some("sqlite") => {
            let rest = location.trim_start_matches("sqlite:");
            if rest.strip_prefix("//").is_some_and(|r| {
                r.split('/')
                    .next()
                    .is_some_and(|authority| authority.contains('@'))
            }) {
                return Err("createAdapter: a SQLite URL takes no user name or password; use e.g. 'sqlite:./kavach.db' or 'file:./dev.db'".into());
            }
            // `sqlite:///abs/path` and `sqlite://./rel` are both common.
            match rest.strip_prefix("//") {
                Some(path) if path.starts_with('/') || path.starts_with('.') => path,
                Some(path) => path,
                None => rest,
            }
        }
        Some("postgres" | "postgresql") => {
            return Ok(config_for(
                Target::Postgres(server_config(url, 5432)?),
                options,
            ))
        }
        Some("mysql" | "mariadb") => {
            return Ok(config_for(
                Target::Mysql(server_config(url, 3306)?),
                options,
            ))
        }
        Some(other) => {
            return Err(format!(
                "createAdapter: unsupported URL scheme '{other}:'; accepted forms: {ACCEPTED_FORMS}"
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
    let mut config = config_for(target, options);
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match key {
            "socket_timeout" => config.busy_timeout = seconds(key, value)?,
            "connection_limit" => {
                config.read_connections = count(key, value)?.min(MAX_SQLITE_READERS);
            }
            // Prisma documents other parameters (sslmode, schema, ...) that mean nothing
            // for SQLite: accept and ignore them, as Prisma does.
            _ => {}
        }
    }
    Ok(config)
}

fn config_for(target: Target, options: &Options) -> Config {
    Config {
        target,
        busy_timeout: Duration::from_secs(5),
        read_connections: default_read_connections(),
        skip_migrations: options.skip_migrations,
        timestamp_format: options.timestamp_format,
        replicas: Vec::new(),
    }
}

/// Parses a `postgresql://` / `mysql://` URL. Messages name the host, never the password.
fn server_config(text: &str, default_port: u16) -> Result<Server, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("createAdapter: malformed database URL ({e}); expected e.g. 'postgresql://user:password@host:5432/db'")
    })?;
    let decode = |s: &str| {
        percent_decode(s).map_err(|_| {
            "createAdapter: the URL's user name or password is not valid percent-encoding"
                .to_string()
        })
    };
    let socket_in_query = url
        .query_pairs()
        .any(|(key, value)| key == "socket" || (key == "host" && value.starts_with('/')));
    let host = match url.host_str().filter(|h| !h.is_empty()) {
        Some(host) => host.trim_matches(['[', ']']).to_string(),
        None if socket_in_query => "localhost".to_string(),
        None => {
            return Err(format!(
                "createAdapter: the URL names no host; expected e.g. '{}://user:password@host:{default_port}/db'",
                url.scheme()
            ))
        }
    };
    let mut server = Server {
        host,
        port: url.port().unwrap_or(default_port),
        user: decode(url.username())?,
        password: url.password().map(decode).transpose()?,
        database: Some(decode(url.path().trim_start_matches('/'))?).filter(|d| !d.is_empty()),
        pool_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ..Server::default()
    };
    if server.user.is_empty() {
        server.user = "root".into();
    }
    for (key, value) in url.query_pairs() {
        let value = value.as_ref();
        match key.as_ref() {
            "connection_limit" => server.connection_limit = Some(count(&key, value)?),
            "pool_timeout" => server.pool_timeout = seconds(&key, value)?,
            "connect_timeout" => server.connect_timeout = seconds(&key, value)?,
            "socket_timeout" => server.socket_timeout = Some(seconds(&key, value)?),
            "schema" => server.schema = Some(value.to_string()),
            "sslmode" => server.ssl_mode = Some(one_of(&key, value, SSL_MODES)?),
            "sslaccept" => server.ssl_mode = Some(one_of(&key, value, SSL_ACCEPT)?),
            "sslrootcert" => server.ssl_root_cert = Some(value.to_string()),
            "sslcert" => server.ssl_cert = Some(value.to_string()),
            "sslkey" => server.ssl_key = Some(value.to_string()),
            "pgbouncer" => server.pgbouncer = value == "true",
            "statement_cache_size" => server.statement_cache_size = Some(cache_size(&key, value)?),
            "application_name" => server.application_name = Some(value.to_string()),
            "socket" => server.socket = Some(value.to_string()),
            "host" if value.starts_with('/') => server.socket = Some(value.to_string()),
            // Other parameters Prisma or drivers know (e.g. `sslidentity`): ignored.
            _ => {}
        }
    }
    Ok(server)
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The longest duration a URL parameter may give: what a JS timer holds (2^31 - 1 ms,
/// about 24.8 days), so no wait here outlasts what Prisma itself could wait.
pub const MAX_SECONDS: f64 = 2_147_483.647;

/// The most connections (a server pool, SQLite readers) a URL may ask for.
pub const MAX_CONNECTIONS: u32 = 1000;

/// More reader threads than this cannot help: SQLite has one writer, and every reader
/// keeps its own page cache.
const MAX_SQLITE_READERS: u32 = 64;

/// A number of seconds (fractions allowed) in `0..=MAX_SECONDS`.
fn seconds(key: &str, value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| (0.0..=MAX_SECONDS).contains(v))
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| {
            format!(
                "createAdapter: URL parameter {key} must be a number of seconds from 0 to {MAX_SECONDS}, got '{}'",
                shorten(value)
            )
        })
}

/// A whole number of connections in `1..=MAX_CONNECTIONS`.
fn count(key: &str, value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_CONNECTIONS).contains(n))
        .ok_or_else(|| {
            format!(
                "createAdapter: URL parameter {key} must be a whole number from 1 to {MAX_CONNECTIONS}, got '{}'",
                shorten(value)
            )
        })
}

fn cache_size(key: &str, value: &str) -> Result<usize, String> {
    const MAX: usize = 100_000;
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= MAX)
        .ok_or_else(|| {
            format!(
                "createAdapter: URL parameter {key} must be a whole number from 0 to {MAX}, got '{}'",
                shorten(value)
            )
        })
}

/// PostgreSQL's `sslmode` values (libpq's), as Prisma passes them on.
const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];
/// MySQL's `sslaccept` values in Prisma URLs.
const SSL_ACCEPT: &[&str] = &["strict", "accept_invalid_certs"];

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "createAdapter: URL parameter {key} must be one of {}, got '{}'",
            allowed.join(", "),
            shorten(value)
        ))
    }
}

/// A parameter's value as quoted in a message: values are not secrets, but may be long.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
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
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
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
        assert_eq!(
            target("file:dev.db?connection_limit=1"),
            Target::File("dev.db".into())
        );
        assert_eq!(target("./kavach.db"), Target::File("./kavach.db".into()));
        assert_eq!(target("/tmp/k.db"), Target::File("/tmp/k.db".into()));
        assert_eq!(target("sqlite:./k.db"), Target::File("./k.db".into()));
        assert_eq!(
            target("sqlite:///tmp/k.db"),
            Target::File("/tmp/k.db".into())
        );
        let c = parse(
            "file:./dev.db?socket_timeout=2&connection_limit=3&sslmode=require",
            Options::default(),
        )
        .unwrap();
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
        let err = parse("postgresql://u:hunter2@[bad/db", Options::default()).unwrap_err();
        assert!(
            err.contains("malformed") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn durations_and_counts_stay_in_range() {
        for url in [
            "file:x.db?socket_timeout=1e300",
            "file:x.db?socket_timeout=inf",
            "file:x.db?connection_limit=1e300",
            "file:x.db?connection_limit=0",
            "postgresql://h/db?connect_timeout=1e300",
            "postgresql://h/db?pool_timeout=-1",
            "postgresql://h/db?socket_timeout=NaN",
            "mysql://h/db?connection_limit=2.5",
            "postgresql://h/db?statement_cache_size=1e300",
            "postgresql://h/db?sslmode=bogus",
            "mysql://h/db?sslaccept=bogus",
            "postgresql://",
        ] {
            let err = parse(url, Options::default()).unwrap_err();
            assert!(err.starts_with("createAdapter:"), "{url}: {err}");
        }
        let err = parse("sqlite://user:hunter2@/tmp/x.db", Options::default()).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let c = parse(
            "file:x.db?connection_limit=1000&socket_timeout=0.5",
            Options::default(),
        )
        .unwrap();
        assert_eq!(
            (c.read_connections, c.busy_timeout),
            (64, Duration::from_millis(500))
        );
        assert!(parse(
            "postgresql:///db?host=/var/run/postgresql",
            Options::default()
        )
        .is_ok());
    }

    #[test]
    fn server_urls_carry_prisma_parameters() {
        let c = parse(
            "postgresql://kav%40ach:p%40ss@db.internal:6543/app?schema=tenant1&connection_limit=5&pool_timeout=2&sslmode=require&pgbouncer=true&unknown=1",
            Options::default(),
        )
        .unwrap();
        let Target::Postgres(s) = c.target else {
            panic!("not postgres")
        };
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("db.internal", 6543, "kav@ach")
        );
        assert_eq!(s.password.as_deref(), Some("p@ss"));
        assert_eq!(s.database.as_deref(), Some("app"));
        assert_eq!(s.schema.as_deref(), Some("tenant1"));
        assert_eq!(s.connection_limit, Some(5));
        assert_eq!(s.pool_timeout, Duration::from_secs(2));
        assert!(s.pgbouncer);
        assert_eq!(s.location(), "db.internal:6543");
        let c = parse("mysql://root@127.0.0.1/test", Options::default()).unwrap();
        assert!(matches!(c.target, Target::Mysql(Server { port: 3306, .. })));
    }

    #[test]
    fn replicas_take_the_primary_schema_unless_they_name_one() {
        let options = |replicas: &[&str]| Options {
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
            ..Options::default()
        };
        let c = parse(
            "postgresql://p@primary/app?schema=auth",
            options(&[
                "postgresql://r@replica1/app",
                "postgresql://r@replica2/app?schema=other",
            ]),
        )
        .unwrap();
        let schemas: Vec<_> = c.replicas.iter().map(|r| r.schema.as_deref()).collect();
        assert_eq!(schemas, [Some("auth"), Some("other")]);
        assert_eq!(c.replicas[0].host, "replica1");
        let refused = |url: &str, replica: &str| parse(url, options(&[replica])).unwrap_err();
        assert!(refused("mysql://root@h/db", "mysql://root@r/db").contains("PostgreSQL only"));
        assert!(refused(":memory:", "postgresql://r@h/db").contains("PostgreSQL only"));
        assert!(refused("postgresql://p@h/db", "mysql://r@h/db").contains("postgresql://"));
    }
}
