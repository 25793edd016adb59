//! The SQLite store: one file holding prompts, samples, scores, decisions, rules, exports, runs.

pub mod fts;
pub mod ids;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The default store file, relative to the working directory.
pub const DEFAULT_DB: &str = "retort.db";

/// Errors opening or migrating a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The cause is in the message, not chained as a source: `{:#}` would print it twice.
    #[error("cannot open the store {path}: {cause}")]
    Open { path: PathBuf, cause: sqlx::Error },
    #[error(
        "cannot bring the store {path} up to date: {cause}\n\
         (was it written by a newer retort? keep a copy and use that version)"
    )]
    Migrate { path: PathBuf, cause: sqlx::migrate::MigrateError },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// An open store: a pool of connections with the pragmas every connection needs.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|cause| StoreError::Open { path: path.to_owned(), cause })?
            .create_if_missing(true)
            // 16 KiB pages keep R1-sized rows (~5 KB) off overflow pages: ~40% faster imports.
            // It only takes effect when the file is created, before WAL is switched on.
            .page_size(16_384)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL never corrupts; a power cut may lose the last commits only.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // The TUI, an import and a rule may write at once from different processes.
            .busy_timeout(Duration::from_secs(30))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16384")
            // `prompt ~ "regex"` in rules compiles to REGEXP, backed by the regex crate.
            .with_regexp();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|cause| StoreError::Open { path: path.to_owned(), cause })?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|cause| StoreError::Migrate { path: path.to_owned(), cause })?;
        Ok(Self { pool, path: path.to_owned() })
    }

    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store holds no prompts and no samples yet.
    pub async fn is_empty(&self) -> Result<bool, sqlx::Error> {
        let (prompts,): (i64,) = sqlx::query_as("SELECT count(*) FROM prompts").fetch_one(&self.pool).await?;
        Ok(prompts == 0)
    }

    /// Folds the write-ahead log back into the store and empties it. After a bulk write (an
    /// import, a rule over 100k samples) a large log slows every later read and write; this is
    /// cheap when the automatic checkpoints kept up. Best effort: with readers active it does
    /// what it can and the log shrinks later.
    ///
    /// First a passive checkpoint, which copies the log into the store without holding other
    /// writers up; then the truncating one, which does block them, but has next to nothing left
    /// to copy (alone, it held a curator's key in the TUI up for two seconds after an import).
    pub async fn checkpoint(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await;
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await;
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Adds one value to a dynamically built statement's arguments (multi-row INSERTs, compiled rules).
pub fn add_arg<T>(args: &mut sqlx::sqlite::SqliteArguments, value: T) -> Result<(), sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    use sqlx::Arguments as _;
    args.add(value).map_err(sqlx::Error::Encode)
}

/// Seconds since the Unix epoch, the store's timestamp unit.
#[must_use]
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
