//! `retort list`: samples matching a predicate, with their texts and scores.

use crate::rules::Expr;
use crate::store::samples::{self, Sample};
use crate::store::{Store, StoreError};

/// One sample as `list --json` prints it: the store's read model of a sample.
pub type ListedSample = Sample;

/// What stops a listing: the store, or the output (a closed pipe).
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the list: {0}")]
    Output(#[from] std::io::Error),
}

/// Calls `each` for every sample matching `filter`, in id order, at most `limit`.
pub async fn list(
    store: &Store,
    filter: Option<&Expr>,
    limit: Option<u64>,
    mut each: impl FnMut(ListedSample) -> std::io::Result<()>,
) -> Result<u64, ListError> {
    samples::each(store, filter, limit, |s| each(s).map_err(ListError::from)).await
}
