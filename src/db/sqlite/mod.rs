//! SQLite: a writer thread and, for a file, reader threads, each owning one connection's
//! handle. One job per file: `connection.rs` runs statements on a handle (it is the
//! [`Queryable`](super::interpreter::Queryable) here), `executor.rs` runs the threads and
//! their queues, `schema.rs` creates missing tables and finds each column's date format.
//! This file opens the connections. Dates are stored as Prisma 7 stores them
//! (`2025-01-02T03:04:05.678+00:00` text), not in sqlx's own chrono format.

mod connection;
mod executor;
mod schema;

use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::Connection;

pub(super) use executor::{Executor, Work};

use crate::config::{Config, Target};
use crate::error::{KavachError, Result};

fn connect_options(config: &Config) -> SqliteConnectOptions {
    let base = match &config.target {
        Target::File(path) => SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal),
        _ => SqliteConnectOptions::new(),
    };
    // A 16 MB page cache per connection, as better-sqlite3 (under Prisma 7) is built
    // with; SQLite's own default of 2 MB re-reads a table of 10k agents on every scan.
    base.foreign_keys(true)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(config.busy_timeout)
        .pragma("cache_size", "-16000")
}

/// Opens the writer connection (creating missing tables) and, for a file, the reader
/// connections, and starts a thread on each. Also returns the tables it created.
pub(super) async fn connect(config: &Config, migrate: bool) -> Result<(Executor, Vec<String>)> {
    let options = connect_options(config);
    let open_error = |e: sqlx::Error| {
        let place = match &config.target {
            Target::File(path) => format!("the SQLite database file {}", path.display()),
            _ => "an in-memory SQLite database".to_string(),
        };
        KavachError::connection("P1003", format!("Cannot open {place}: {e}"))
    };
    let mut writer = SqliteConnection::connect_with(&options)
        .await
        .map_err(open_error)?;
    let created = match migrate {
        true => schema::create_missing_tables(&mut writer).await?,
        false => Vec::new(),
    };
    let mut readers = Vec::new();
    if let Target::File(_) = config.target {
        let options = options.read_only(true);
        for _ in 0..config.read_connections {
            readers.push(
                SqliteConnection::connect_with(&options)
                    .await
                    .map_err(open_error)?,
            );
        }
    }
    let formats = schema::detect_formats(&mut writer, config.timestamp_format, &created).await?;
    let executor = Executor::start(
        writer,
        readers,
        Arc::new(formats),
        tokio::runtime::Handle::current(),
    )
    .await?;
    Ok((executor, created))
}
