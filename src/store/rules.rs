//! Saved rules: the rules that shaped the store, by name.

use super::{Result, Store, Tx, now};

/// A rule as saved.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SavedRule {
    pub name: String,
    pub source: String,
}

/// Saves (or updates) a rule's source under `name`; returns its id.
pub async fn save(tx: &mut Tx, name: &str, source: &str) -> Result<i64> {
    let now = now();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO rules (name, source, created_at, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET source = excluded.source, updated_at = excluded.updated_at RETURNING id",
    )
    .bind(name)
    .bind(source)
    .bind(now)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Every saved rule, in the Rules tab's order.
pub async fn saved(store: &Store) -> Result<Vec<SavedRule>> {
    Ok(sqlx::query_as("SELECT name, source FROM rules ORDER BY position, id").fetch_all(&store.pool).await?)
}

/// Every rule applied and not undone, in the order first saved.
pub async fn in_force(store: &Store) -> Result<Vec<SavedRule>> {
    Ok(sqlx::query_as(
        "SELECT r.name, r.source FROM rules r WHERE EXISTS (SELECT 1 FROM actions a WHERE a.rule_id = r.id AND a.undone_at IS NULL) ORDER BY r.id",
    )
    .fetch_all(&store.pool)
    .await?)
}

/// The names of the rules the store knows: saved, or with an application in the history
/// (undone or not), by name.
pub async fn known_names(store: &Store) -> Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT substr(actor, 6) FROM actions WHERE substr(actor, 1, 5) = 'rule:' UNION SELECT name FROM rules ORDER BY 1")
            .fetch_all(&store.pool)
            .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}
