//! `retort index`: builds the full-text index of the samples not yet in it. An import of many
//! samples runs it in the background (`ops::index`); run by hand, it finishes one that was
//! killed.

use super::progress::ImportBar;
use crate::ops::import::Progress;
use crate::store::{self, Store};

pub async fn run(store: &Store, quiet: bool) -> anyhow::Result<()> {
    let pending = store::fts::pending(store).await?;
    if pending == 0 {
        if !quiet {
            super::say!("The full-text index is complete.");
        }
        return Ok(());
    }
    let started = std::time::Instant::now();
    let indexed = if quiet {
        store::fts::catch_up(store, |_| {}).await?
    } else {
        let bar = ImportBar::new();
        let indexed = store::fts::catch_up(store, |done| bar.update(Progress::Indexing { done, total: pending as u64 })).await;
        bar.finish();
        indexed?
    };
    store.checkpoint().await;
    if !quiet {
        super::say!("Indexed {indexed} samples in {:.1}s.", started.elapsed().as_secs_f64());
    }
    Ok(())
}
