//! The SQLite store: one file holding prompts, samples, scores, decisions, rules, exports, runs.

pub mod actions;
pub mod browse;
pub mod edits;
mod enums;
pub mod exports;
pub mod fts;
pub mod ids;
pub mod imports;
pub mod logprobs;
pub mod prompts;
pub mod rules;
pub mod runs;
pub mod samples;
pub mod scores;
pub mod selection;
mod sql;
pub mod stats;
pub mod synthetic;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
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

/// Whether a SQLite error is `SQLITE_BUSY` (any extended code: 5, 261, 517, 773).
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(sqlx::error::DatabaseError::code).and_then(|c| c.parse::<i64>().ok()).is_some_and(|c| c & 0xff == 5)
}

/// What the store's functions return.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How a writer waits for another process's write to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// SQLite's busy handler: it sleeps 1, 2, 5, 10 … 100 ms between tries, fine for a batch job
    /// and too coarse for a key press (an import commits every 40 ms and takes the lock again
    /// within a millisecond: a handler asleep for 100 ms misses every gap).
    Handler,
    /// The store's own loop: tries every millisecond, for the TUI's writer.
    Poll,
}

/// The bytes of the write-ahead log's file kept when the log starts over: an import leaves
/// hundreds of MB in it otherwise.
const LOG_KEPT: u64 = 64 << 20;
/// The store's page size: 16 KiB keeps R1-sized rows (~5 KB) off overflow pages.
const PAGE_SIZE: u32 = 16_384;
/// The log's length, in pages, at which a commit checkpoints it.
const CHECKPOINT_PAGES: u64 = LOG_KEPT / PAGE_SIZE as u64;

/// How long a writer waits for the store before it gives up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A write transaction (or, from [`Store::snapshot`], a read one), committed or rolled back
/// by its owner; dropped, it rolls back. A person's write holds its claim on the next turn
/// until it is done.
#[derive(Debug)]
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _claim: Option<Claim>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }

    fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

/// The turn file beside the store (`retort.db-turn`): how a writer a person is waiting for
/// (the TUI's) asks every other writer, in any process, to let it go next. SQLite's lock has
/// no queue: a key that asks every millisecond beside an import which lets go of the lock for
/// 2 ms in every 25 still waited up to a quarter of a second on two busy cores. The TUI's
/// writer holds the file's exclusive lock from its first try to its commit; the other writers
/// look before they begin a transaction and wait while it is held.
#[derive(Debug)]
struct Turn(std::fs::File);

impl Turn {
    fn open(store: &Path) -> Option<Arc<Self>> {
        let mut name = store.as_os_str().to_owned();
        name.push("-turn");
        // A store in a folder that cannot hold the file still works, without the priority.
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(name).ok().map(|f| Arc::new(Self(f)))
    }

    /// Claims the next turn, waiting while another person's writer (a second TUI) holds it:
    /// its turn is short. None when the file cannot be locked at all, or at `deadline`.
    async fn claim(self: &Arc<Self>, deadline: std::time::Instant) -> Option<Claim> {
        loop {
            match self.0.try_lock() {
                Ok(()) => return Some(Claim(Arc::clone(self))),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(_) => return None,
            }
        }
    }

    /// Whether a person's writer holds the claim now.
    fn claimed(&self) -> bool {
        match self.0.try_lock_shared() {
            Ok(()) => {
                let _ = self.0.unlock();
                false
            }
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        }
    }
}

/// A held claim on the next turn; let go of when dropped.
#[derive(Debug)]
struct Claim(Arc<Turn>);

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = self.0.0.unlock();
    }
}

/// An open store: a pool of connections with the pragmas every connection needs.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    waiting: Waiting,
    turn: Option<Arc<Turn>>,
}

/// The options every connection is opened with.
fn options(path: &Path, busy_timeout: Duration) -> Result<SqliteConnectOptions> {
    let url = format!("sqlite://{}", path.display());
    Ok(SqliteConnectOptions::from_str(&url)
        .map_err(|cause| StoreError::Open { path: path.to_owned(), cause })?
        .create_if_missing(true)
        // 16 KiB pages keep R1-sized rows (~5 KB) off overflow pages: ~40% faster imports.
        // It only takes effect when the file is created, before WAL is switched on.
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL never corrupts; a power cut may lose the last commits only.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // The TUI, an import and a rule may write at once from different processes.
        .busy_timeout(busy_timeout)
        .pragma("journal_size_limit", LOG_KEPT.to_string())
        // Checkpoint at 64 MB of log (4,096 16 KiB pages) rather than SQLite's 1,000 pages: an
        // 800k-row import copied fewer pages twice (55 s against 60 s, 13.0 GB written not 13.9).
        .pragma("wal_autocheckpoint", CHECKPOINT_PAGES.to_string())
        .pragma("temp_store", "memory")
        .pragma("cache_size", "-16384")
        // `prompt ~ "regex"` in rules compiles to REGEXP, backed by the regex crate.
        .with_regexp())
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options(path, BUSY_TIMEOUT)?)
            .await
            .map_err(|cause| StoreError::Open { path: path.to_owned(), cause })?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|cause| StoreError::Migrate { path: path.to_owned(), cause })?;
        Ok(Self { pool, path: path.to_owned(), waiting: Waiting::Handler, turn: Turn::open(path) })
    }

    /// The same store for a writer that must get the lock the moment another writer lets go
    /// of it (the TUI's, a key press waiting): its own connection, which asks for the lock
    /// every millisecond instead of sleeping in SQLite's busy handler.
    pub fn eager(&self) -> Result<Self> {
        // It never checkpoints on its own: the commit that crosses the log's 1,000 pages copies
        // them into the store (~150 ms beside an import), and a key must not pay for that. The
        // TUI folds the log back in the background ([`Store::checkpoint`]).
        let options = options(&self.path, Duration::ZERO)?.pragma("wal_autocheckpoint", "0");
        // Its one connection is not pinged before each use: a round trip a key would wait for.
        let pool = SqlitePoolOptions::new().max_connections(1).test_before_acquire(false).connect_lazy_with(options);
        // Its own open file: a lock on the file belongs to the opening, and this one's claim
        // must hold off the other openings in this process as well as other processes.
        Ok(Self { pool, path: self.path.clone(), waiting: Waiting::Poll, turn: Turn::open(&self.path) })
    }

    /// The connection pool, for tests' own checks; the crate speaks to the store through this
    /// module's functions.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Begins a write transaction, taking the write lock up front (`BEGIN IMMEDIATE`) so that
    /// waiting for another writer happens here, under the busy timeout, and never later as a
    /// failed upgrade of a read.
    ///
    /// A person's writer ([`Store::eager`]) claims the next turn first; every other writer
    /// waits while someone holds that claim (see [`Turn`]).
    pub async fn write(&self) -> Result<Tx> {
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let claim = match (&self.turn, self.waiting) {
            (Some(turn), Waiting::Poll) => turn.claim(deadline).await,
            (Some(_), Waiting::Handler) => {
                self.after_person(deadline).await;
                None
            }
            (None, _) => None,
        };
        loop {
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => return Ok(Tx { tx, _claim: claim }),
                Err(e) if self.waiting == Waiting::Poll && is_busy(&e) && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Begins a read transaction: one consistent view of the store. Writes in it go to
    /// temporary tables only (a dry run's selection); it is rolled back.
    pub async fn snapshot(&self) -> Result<Tx> {
        Ok(Tx { tx: self.pool.begin().await?, _claim: None })
    }

    /// Waits while a person's writer holds its claim on the next turn (until `deadline`).
    async fn after_person(&self, deadline: std::time::Instant) {
        while self.wanted() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Whether a person's writer (the TUI's) is waiting for its turn or writing.
    #[must_use]
    pub fn wanted(&self) -> bool {
        self.waiting == Waiting::Handler && self.turn.as_ref().is_some_and(|t| t.claimed())
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store holds no prompts and no samples yet.
    pub async fn is_empty(&self) -> Result<bool> {
        let (prompts,): (i64,) = sqlx::query_as("SELECT count(*) FROM prompts").fetch_one(&self.pool).await?;
        Ok(prompts == 0)
    }

    /// Folds the write-ahead log back into the store. After a bulk write (an import, a rule
    /// over 100k samples) a large log slows every later read and write; this is cheap when the
    /// automatic checkpoints kept up. Best effort: with readers active it does what it can and
    /// the log is folded later.
    ///
    /// A passive checkpoint, which copies the log into the store without holding other
    /// writers up. The log's file is cut back to [`LOG_KEPT`] by the next writer that starts
    /// it over; a truncating checkpoint, which did that at once, holds the write lock while it
    /// waits for readers and kept a curator's key waiting 70 ms at the end of every import.
    pub async fn checkpoint(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await;
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Seconds since the Unix epoch, the store's timestamp unit.
#[must_use]
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
