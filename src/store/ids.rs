//! Small lookup tables (teachers, sources, verifiers, tags): name → id, created on first use.

use std::collections::HashMap;

use sqlx::SqliteConnection;

/// Which lookup table a name lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameTable {
    Teachers,
    Sources,
    Tags,
}

impl NameTable {
    fn insert_sql(self) -> &'static str {
        match self {
            NameTable::Teachers => "INSERT INTO teachers (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
            NameTable::Sources => "INSERT INTO sources (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
            NameTable::Tags => "INSERT INTO tags (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
        }
    }
}

/// Caches name → id for the lookup tables during a long write (an import holds a few dozen names).
///
/// Ids survive a rolled-back transaction only if the row was committed, so a cache must not
/// outlive the transaction that filled it unless that transaction committed; callers clear it
/// with [`IdCache::clear`] after a rollback.
#[derive(Debug, Default)]
pub struct IdCache {
    names: HashMap<(NameTable, String), i64>,
    verifiers: HashMap<String, i64>,
}

impl IdCache {
    pub fn clear(&mut self) {
        self.names.clear();
        self.verifiers.clear();
    }

    /// The id of `name` in `table`, inserting it when new.
    pub async fn id(&mut self, tx: &mut super::Tx, table: NameTable, name: &str) -> super::Result<i64> {
        Ok(self.id_on(tx.conn(), table, name).await?)
    }

    /// The id of verifier `name`, registering it with `kind` when new.
    pub async fn verifier(&mut self, tx: &mut super::Tx, name: &str, kind: &str) -> super::Result<i64> {
        Ok(self.verifier_on(tx.conn(), name, kind).await?)
    }

    pub(super) async fn id_on(&mut self, conn: &mut SqliteConnection, table: NameTable, name: &str) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.names.get(&(table, name.to_owned())) {
            return Ok(*id);
        }
        let (id,): (i64,) = sqlx::query_as(table.insert_sql()).bind(name).fetch_one(&mut *conn).await?;
        self.names.insert((table, name.to_owned()), id);
        Ok(id)
    }

    pub(super) async fn verifier_on(&mut self, conn: &mut SqliteConnection, name: &str, kind: &str) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.verifiers.get(name) {
            return Ok(*id);
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO verifiers (name, kind, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
        )
        .bind(name)
        .bind(kind)
        .bind(super::now())
        .fetch_one(&mut *conn)
        .await?;
        self.verifiers.insert(name.to_owned(), id);
        Ok(id)
    }
}
