//! When an import builds the full-text index of what it added, and the background indexer.
//!
//! FTS5 costs about as much per R1-sized sample as writing the sample does, whatever its
//! options (tokenizing is the cost: `detail=none` saves a fifth, and loses phrase queries),
//! and it needs the store's one write lock: it cannot run beside the import's writes, only
//! after them. So above [`FOREGROUND_MAX`] samples an import hands the index to a process of
//! its own (`retort index --quiet`) and returns when the rows are in. That process fills the
//! index in the same short transactions as the command would (search finds what it has
//! indexed so far; a key in the TUI waits for one of them at most), and the watermark makes
//! it resumable: killed, the next `retort index`, import or TUI goes on from where it stopped.

use std::path::Path;

use crate::ops::import::Progress;
use crate::store::{self, Store};

/// When an import builds the full-text index of the samples it added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IndexWhen {
    /// Before the command returns when at most [`FOREGROUND_MAX`] samples wait (a few
    /// seconds), in the background beyond.
    #[default]
    Auto,
    /// Before the command returns.
    Now,
    /// In a process of its own that outlives the command.
    Background,
    /// Not now: `retort index`, the next import or the TUI builds it.
    Later,
}

/// The most samples an import indexes before it returns (`--index auto`): about 5 s of work.
pub const FOREGROUND_MAX: i64 = 100_000;

/// What became of the index after an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    /// Complete; with why the background indexer could not start, when it was asked for.
    Done(Option<String>),
    /// Being built by the background process with this id; `pending` samples were left.
    Background { pid: u32, pending: i64 },
    /// Left for later.
    Left { pending: i64 },
}

/// Builds the index of the samples not yet in it, as `when` says. `exe` is the retort binary
/// the background indexer runs (the CLI's own: `std::env::current_exe`); without one it is
/// built here.
pub async fn after_import(
    store: &Store,
    when: IndexWhen,
    exe: Option<&Path>,
    progress: &(dyn Fn(Progress) + Sync),
) -> store::Result<Indexed> {
    let pending = store::fts::pending(store).await?;
    if pending == 0 {
        return Ok(Indexed::Done(None));
    }
    let here = match when {
        IndexWhen::Auto => pending <= FOREGROUND_MAX,
        IndexWhen::Now => true,
        IndexWhen::Background => false,
        IndexWhen::Later => return Ok(Indexed::Left { pending }),
    };
    let mut failed = None;
    if !here && let Some(exe) = exe {
        match spawn_background(exe, store.path()) {
            Ok(pid) => return Ok(Indexed::Background { pid, pending }),
            Err(e) => {
                failed = Some(format!("cannot start the background indexer {} ({e}): the index was built in the command", exe.display()));
            }
        }
    }
    store::fts::catch_up(store, |done| progress(Progress::Indexing { done, total: pending as u64 })).await?;
    Ok(Indexed::Done(failed))
}

/// Where the background indexer's errors go: `<store>-index.log`, beside the store.
#[must_use]
pub fn background_log(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-index.log");
    name.into()
}

/// Starts `exe --db <store> index --quiet` detached: in a process group of its own (a ^C meant
/// for the shell's command does not reach it), with no terminal; what it says on failure is
/// appended to [`background_log`].
fn spawn_background(exe: &Path, db: &Path) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(background_log(db))?;
    let child = std::process::Command::new(exe)
        .arg("--db")
        .arg(db)
        .arg("index")
        .arg("--quiet")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()?;
    Ok(child.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_failing_background_indexer_says_is_kept_beside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("retort.db");
        let store = Store::open(&db).await.unwrap();
        let file = dir.path().join("rows.jsonl");
        std::fs::write(
            &file,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n",
        )
        .unwrap();
        crate::ops::import::import(&store, &[file], &crate::ops::import::ImportOptions::default(), &|_| {}).await.unwrap();
        // An indexer that fails as `retort index` would, on its stderr.
        let exe = dir.path().join("indexer");
        std::fs::write(&exe, "#!/bin/sh\necho \"error: the store: disk I/O error ($*)\" >&2\nexit 1\n").unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let indexed = after_import(&store, IndexWhen::Background, Some(&exe), &|_| {}).await.unwrap();
        assert!(matches!(indexed, Indexed::Background { pending: 1, .. }), "{indexed:?}");
        let log = background_log(&db);
        assert_eq!(log, dir.path().join("retort.db-index.log"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.is_empty() || std::time::Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(text, format!("error: the store: disk I/O error (--db {} index --quiet)\n", db.display()));
    }
}
