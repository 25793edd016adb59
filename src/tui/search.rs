//! `/` fuzzy search over prompt previews and teacher names, off the UI thread.
//!
//! The corpus (one 120-character preview per prompt, and the teacher names) is read once, in
//! the background, and shared. A search scans it in chunks on a blocking thread with
//! fuzzy-matcher's Skim algorithm, keeps the best hits, and reports after the first chunk (the
//! first results appear at once) and at the end. A search that starts before the corpus is read
//! ranks the first prompts, read by themselves, in the meantime. Each search carries a
//! generation; a newer query makes the older scan stop at its next chunk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::browse;
use crate::store::{self, Store};
use fuzzy_matcher::FuzzyMatcher;
use fuzzy_matcher::skim::SkimMatcherV2;

/// Hits kept per search.
pub const TOP: usize = 500;
/// Entries scanned between checks for a newer query (and the first report).
const CHUNK: usize = 20_000;
/// Prompts read by themselves for a search that starts before the corpus is read.
const HEAD: usize = 5_000;

pub use browse::{Entry, Target};

/// A ranked match, with the matched characters' positions for highlighting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub score: i64,
    pub target: Target,
    pub text: String,
    pub positions: Vec<usize>,
}

/// The shared corpus and the latest search's generation.
#[derive(Default)]
pub struct SearchEngine {
    corpus: tokio::sync::OnceCell<Arc<Vec<Entry>>>,
    latest: Arc<AtomicU64>,
}

impl std::fmt::Debug for SearchEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchEngine").field("loaded", &self.corpus.initialized()).finish_non_exhaustive()
    }
}

impl SearchEngine {
    /// Reads the corpus ahead of the first `/`, so the first search answers at once.
    pub async fn preload(&self, store: &Store) {
        let _ = self.corpus.get_or_try_init(|| async { browse::search_corpus(store, None).await.map(Arc::new) }).await;
    }

    /// Runs a search; `partial` receives the first results before the scan ends. Returns `None`
    /// when a newer search superseded this one.
    pub async fn search(
        &self,
        store: &Store,
        generation: u64,
        query: String,
        partial: &(dyn Fn(Vec<Hit>, usize, usize) + Sync),
    ) -> store::Result<Option<Vec<Hit>>> {
        // Searches start in any order on the runtime: the newest generation wins.
        self.latest.fetch_max(generation, Ordering::SeqCst);
        if !self.corpus.initialized() {
            // A `/` right after start-up, while the corpus is still being read (~0.2 s for a
            // million samples): the first prompts, read by themselves, give the first results.
            let head = browse::search_corpus(store, Some(HEAD)).await?;
            // The corpus's size, at most: prompts without samples are not in it.
            let total = browse::search_corpus_bound(store).await?;
            let q = query.clone();
            let scanned = head.len();
            let hits = tokio::task::spawn_blocking(move || {
                let mut hits = Vec::new();
                rank(&SkimMatcherV2::default().smart_case(), &head, &q, &mut hits);
                hits
            })
            .await
            .unwrap_or_default();
            if self.latest.load(Ordering::SeqCst) > generation {
                return Ok(None);
            }
            if !self.corpus.initialized() {
                partial(hits, scanned, usize::try_from(total).unwrap_or(0).max(scanned));
            }
        }
        let corpus = Arc::clone(self.corpus.get_or_try_init(|| async { browse::search_corpus(store, None).await.map(Arc::new) }).await?);
        let latest = Arc::clone(&self.latest);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let scan = tokio::task::spawn_blocking(move || {
            let matcher = SkimMatcherV2::default().smart_case();
            let mut hits: Vec<Hit> = Vec::new();
            for (i, chunk) in corpus.chunks(CHUNK).enumerate() {
                if latest.load(Ordering::SeqCst) > generation {
                    return None;
                }
                rank(&matcher, chunk, &query, &mut hits);
                let scanned = ((i + 1) * CHUNK).min(corpus.len());
                if scanned < corpus.len() && i == 0 {
                    let _ = tx.send((hits.clone(), scanned, corpus.len()));
                }
            }
            Some(hits)
        });
        while let Some((hits, scanned, total)) = rx.recv().await {
            partial(hits, scanned, total);
        }
        Ok(scan.await.unwrap_or(None))
    }
}

/// Adds the entries that match `query` to `hits` and keeps the best [`TOP`], best first (the
/// shorter text first among equal scores).
fn rank(matcher: &SkimMatcherV2, entries: &[Entry], query: &str, hits: &mut Vec<Hit>) {
    for e in entries {
        if let Some((score, positions)) = matcher.fuzzy_indices(&e.text, query) {
            hits.push(Hit { score, target: e.target, text: e.text.clone(), positions });
        }
    }
    hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.text.len().cmp(&b.text.len())));
    hits.truncate(TOP);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skim_finds_scattered_letters() {
        let m = SkimMatcherV2::default().smart_case();
        let (score, positions) = m.fuzzy_indices("Convert the point to polar coordinates", "polcoord").unwrap();
        assert!(score > 0);
        assert_eq!(positions.len(), 8);
        assert!(m.fuzzy_match("Convert the point", "xyz").is_none());
    }
}
