//! What the TUI reads from the store (its read model). Every function here runs in a
//! background task; the UI never waits on one. The sample list is read by keyset pagination
//! (`id > ?` / `id < ?`), so a window anywhere in a million samples costs the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::Row;
use sqlx::sqlite::SqliteArguments;

use super::actions::Move;
use super::sql::{add_arg, add_params, placeholders};
use super::{Result, Store};
use crate::domain::{LabelType, Status};
use crate::rules::Expr;
use crate::rules::compile::{FROM, compile};

/// Which samples the list shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ListFilter {
    #[default]
    All,
    /// `f`: a predicate in the rule language.
    Expr(Expr),
    /// `/`: the samples of the prompts a fuzzy search found.
    Prompts(Arc<Vec<i64>>),
    /// `/` on a teacher's name: that teacher's samples.
    Teacher(i64),
    /// `S`: full-text search (FTS5) over prompt, reasoning and answer; every word must occur.
    Text(String),
}

impl ListFilter {
    /// The condition (on `s` and `p`) with its parameters added to `args`.
    fn condition(&self, args: &mut SqliteArguments) -> Result<String, sqlx::Error> {
        Ok(match self {
            ListFilter::All => "1".to_owned(),
            ListFilter::Expr(e) => {
                let c = compile(Some(e));
                add_params(args, &c)?;
                c.sql
            }
            ListFilter::Prompts(ids) => {
                add_arg(args, serde_json::to_string(ids.as_ref()).unwrap_or_else(|_| "[]".into()))?;
                "s.prompt_id IN (SELECT value FROM json_each(?))".to_owned()
            }
            ListFilter::Teacher(id) => {
                add_arg(args, *id)?;
                "s.teacher_id = ?".to_owned()
            }
            ListFilter::Text(text) => {
                add_arg(args, fts_query(text))?;
                "s.id IN (SELECT rowid FROM sample_fts WHERE sample_fts MATCH ?)".to_owned()
            }
        })
    }
}

/// A full-text query where every word must occur, each quoted so FTS5 syntax in the user's
/// text is searched for, not interpreted.
#[must_use]
pub fn fts_query(text: &str) -> String {
    text.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// One line of the sample list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRow {
    pub id: i64,
    pub prompt_id: i64,
    pub status: Status,
    pub label: LabelType,
    pub teacher: String,
    pub tokens: i64,
    pub finish_reason: Option<String>,
    pub scores: BTreeMap<String, f64>,
    /// The prompt's first 200 characters.
    pub preview: String,
}

/// The order of the list. Every order ends in the sample id, so keyset pagination stays exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Id,
    TokensAscending,
    TokensDescending,
    Status,
    Teacher,
    Label,
    /// The score shown in the list ([`main_score`]), best first; unscored last.
    Score,
}

impl SortKey {
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            SortKey::Id => SortKey::TokensAscending,
            SortKey::TokensAscending => SortKey::TokensDescending,
            SortKey::TokensDescending => SortKey::Status,
            SortKey::Status => SortKey::Teacher,
            SortKey::Teacher => SortKey::Label,
            SortKey::Label => SortKey::Score,
            SortKey::Score => SortKey::Id,
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::TokensAscending => "tokens, shortest first",
            SortKey::TokensDescending => "tokens, longest first",
            SortKey::Status => "status",
            SortKey::Teacher => "teacher",
            SortKey::Label => "label",
            SortKey::Score => "score, best first",
        }
    }

    /// The key as SQL over sample `s`, and the same key for the anchor sample `?`.
    fn sql(self) -> (&'static str, &'static str, bool) {
        match self {
            SortKey::Id => ("s.id", "?", false),
            SortKey::TokensAscending => ("s.tokens", "(SELECT tokens FROM samples WHERE id = ?)", false),
            SortKey::TokensDescending => ("s.tokens", "(SELECT tokens FROM samples WHERE id = ?)", true),
            SortKey::Status => ("s.status", "(SELECT status FROM samples WHERE id = ?)", false),
            SortKey::Label => ("s.label", "(SELECT label FROM samples WHERE id = ?)", false),
            SortKey::Score => (
                "coalesce((SELECT sc.score FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id \
                   WHERE sc.sample_id = s.id AND sc.score IS NOT NULL \
                   ORDER BY CASE v.name WHEN 'math' THEN 0 WHEN 'imported' THEN 1 ELSE 2 END, v.name LIMIT 1), -1)",
                "coalesce((SELECT sc.score FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id \
                   WHERE sc.sample_id = ? AND sc.score IS NOT NULL \
                   ORDER BY CASE v.name WHEN 'math' THEN 0 WHEN 'imported' THEN 1 ELSE 2 END, v.name LIMIT 1), -1)",
                true,
            ),
            SortKey::Teacher => (
                "(SELECT name FROM teachers WHERE id = s.teacher_id)",
                "(SELECT name FROM teachers WHERE id = (SELECT teacher_id FROM samples WHERE id = ?))",
                false,
            ),
        }
    }
}

/// The verifiers whose score the list shows first, in order of preference.
const MAIN_VERIFIERS: [&str; 2] = ["math", "imported"];

/// The score the list shows and sorts by: `math`, else `imported`, else the first by name.
#[must_use]
pub fn main_score(scores: &BTreeMap<String, f64>) -> Option<f64> {
    MAIN_VERIFIERS.iter().find_map(|v| scores.get(*v)).or_else(|| scores.values().next()).copied()
}

/// Which way a page is read from its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFrom {
    /// The first samples.
    Start,
    /// The last samples.
    End,
    /// Samples after this id.
    After(i64),
    /// Samples before this id.
    Before(i64),
    /// This sample and those after it (a jump to a sample by id).
    At(i64),
}

const LIST_COLUMNS: &str = "s.id, s.prompt_id, s.status, s.label, (SELECT name FROM teachers WHERE id = s.teacher_id), s.tokens, s.finish_reason, \
    (SELECT json_group_object(v.name, sc.score) FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id WHERE sc.sample_id = s.id AND sc.score IS NOT NULL), \
    (SELECT substr(text, 1, 200) FROM prompt_texts WHERE prompt_id = s.prompt_id)";

fn list_row(r: &sqlx::sqlite::SqliteRow) -> Result<ListRow, sqlx::Error> {
    let scores: Option<String> = r.try_get(7)?;
    Ok(ListRow {
        id: r.try_get(0)?,
        prompt_id: r.try_get(1)?,
        status: r.try_get(2)?,
        label: r.try_get(3)?,
        teacher: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        tokens: r.try_get(5)?,
        finish_reason: r.try_get(6)?,
        scores: scores.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
        preview: r.try_get::<Option<String>, _>(8)?.unwrap_or_default(),
    })
}

/// A page of the list, in the list's order.
pub async fn page(store: &Store, from: PageFrom, limit: i64, filter: &ListFilter, sort: SortKey) -> Result<Vec<ListRow>> {
    let mut args = SqliteArguments::default();
    let cond = filter.condition(&mut args)?;
    let (key, anchor_key, descending) = sort.sql();
    // Reading forward means the list's own direction; backward, the reverse.
    let (forward, backward) = if descending { ("DESC", "ASC") } else { ("ASC", "DESC") };
    let (after, before) = if descending { ("<", ">") } else { (">", "<") };
    let (keyset, key_order, id_order) = match from {
        PageFrom::Start => ("1".to_owned(), forward, "ASC"),
        PageFrom::End => ("1".to_owned(), backward, "DESC"),
        PageFrom::After(id) => {
            add_arg(&mut args, id)?;
            add_arg(&mut args, id)?;
            add_arg(&mut args, id)?;
            (format!("({key} {after} {anchor_key} OR ({key} = {anchor_key} AND s.id > ?))"), forward, "ASC")
        }
        PageFrom::Before(id) => {
            add_arg(&mut args, id)?;
            add_arg(&mut args, id)?;
            add_arg(&mut args, id)?;
            (format!("({key} {before} {anchor_key} OR ({key} = {anchor_key} AND s.id < ?))"), backward, "DESC")
        }
        PageFrom::At(id) => {
            add_arg(&mut args, id)?;
            add_arg(&mut args, id)?;
            add_arg(&mut args, id)?;
            (format!("({key} {after} {anchor_key} OR ({key} = {anchor_key} AND s.id >= ?))"), forward, "ASC")
        }
    };
    add_arg(&mut args, limit)?;
    let order = if sort == SortKey::Id { format!("s.id {id_order}") } else { format!("{key} {key_order}, s.id {id_order}") };
    let sql = format!("SELECT {LIST_COLUMNS} FROM {FROM} WHERE ({cond}) AND {keyset} ORDER BY {order} LIMIT ?");
    let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch_all(&store.pool).await?;
    let mut out = rows.iter().map(list_row).collect::<Result<Vec<_>, _>>()?;
    if matches!(from, PageFrom::End | PageFrom::Before(_)) {
        out.reverse();
    }
    Ok(out)
}

/// How many samples come before sample `id` in the list's order (its position, from 0), or
/// none when the filter does not let it through.
pub async fn position(store: &Store, id: i64, filter: &ListFilter, sort: SortKey) -> Result<Option<i64>> {
    let mut args = SqliteArguments::default();
    let cond = filter.condition(&mut args)?;
    add_arg(&mut args, id)?;
    let present: Option<i64> =
        sqlx::query_scalar_with(sqlx::AssertSqlSafe(format!("SELECT s.id FROM {FROM} WHERE ({cond}) AND s.id = ?")), args)
            .fetch_optional(&store.pool)
            .await?;
    if present.is_none() {
        return Ok(None);
    }
    let mut args = SqliteArguments::default();
    let cond = filter.condition(&mut args)?;
    let (key, anchor_key, descending) = sort.sql();
    let before = if descending { ">" } else { "<" };
    for _ in 0..3 {
        add_arg(&mut args, id)?;
    }
    let sql =
        format!("SELECT count(*) FROM {FROM} WHERE ({cond}) AND ({key} {before} {anchor_key} OR ({key} = {anchor_key} AND s.id < ?))");
    Ok(Some(sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args).fetch_one(&store.pool).await?))
}

/// Re-reads some rows after a decision changed them.
pub async fn rows(store: &Store, ids: &[i64]) -> Result<Vec<ListRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {LIST_COLUMNS} FROM samples s WHERE s.id IN ({}) ORDER BY s.id", placeholders(ids.len()));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(&store.pool).await?.iter().map(list_row).collect::<Result<_, _>>()?)
}

/// One verifier's verdict on the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLine {
    pub verifier: String,
    pub score: Option<f64>,
    pub pass: Option<bool>,
    pub note: String,
}

/// One change in the sample's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryLine {
    /// When, in seconds since the epoch.
    pub at: i64,
    pub actor: String,
    pub change: String,
    /// The action it was part of (`accept 1 sample(s)`, a rule's name).
    pub action: String,
    pub undone: bool,
}

/// Everything the detail view shows of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub sample: super::samples::Sample,
    pub scores: Vec<ScoreLine>,
    pub history: Vec<HistoryLine>,
    pub note: Option<String>,
    /// The teacher's log-probs of the completion, when it has them (token by token when asked).
    pub scoring: Option<super::logprobs::Scoring>,
}

/// The sample `id` as the detail view shows it; `tokens` also reads its scored tokens.
pub async fn detail(store: &Store, id: i64, tokens: bool) -> Result<Option<Detail>> {
    let pool = &store.pool;
    let Some(sample) = super::samples::one(store, id).await? else {
        return Ok(None);
    };
    let note = sqlx::query_scalar("SELECT note FROM notes WHERE sample_id = ?").bind(id).fetch_optional(pool).await?;
    let scores = sqlx::query(
        "SELECT v.name, sc.score, sc.pass, coalesce(sc.error, json_extract(sc.details, '$.reason'), json_extract(sc.details, '$.predicted'), '') \
         FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id WHERE sc.sample_id = ? ORDER BY v.name",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(ScoreLine {
            verifier: r.try_get(0)?,
            score: r.try_get(1)?,
            pass: r.try_get::<Option<i64>, _>(2)?.map(|p| p != 0),
            note: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Decisions, and the curator's edits of the texts (the text they replaced is kept in
    // `text_edits`; the history says how long it was).
    let history = sqlx::query(
        "SELECT a.created_at, a.actor, d.field, d.old_value, d.new_value, d.reason, a.undone_at IS NOT NULL, a.id, 1, a.description \
         FROM decisions d JOIN actions a ON a.id = d.action_id WHERE d.sample_id = ?1 \
         UNION ALL SELECT a.created_at, a.actor, 'edit ' || e.field, CAST(length(e.old_text) AS TEXT), CAST(length(e.new_text) AS TEXT), \
         NULL, a.undone_at IS NOT NULL, a.id, 0, a.description FROM text_edits e JOIN actions a ON a.id = e.action_id WHERE e.sample_id = ?1 \
         ORDER BY 8 DESC, 9 LIMIT 20",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let field: String = r.try_get(2)?;
        let old: Option<String> = r.try_get(3)?;
        let new: Option<String> = r.try_get(4)?;
        let reason: Option<String> = r.try_get(5)?;
        let mut change = match field.as_str() {
            "tag" => format!("tag {}", new.unwrap_or_default()),
            "untag" => format!("untag {}", old.unwrap_or_default()),
            "note" => "note".to_owned(),
            "edit answer" | "edit reference" => match old {
                Some(old) => format!("{field}: {old} → {} characters", new.unwrap_or_default()),
                None => format!("{field}: written, {} characters", new.unwrap_or_default()),
            },
            _ => format!("{field} {} → {}", old.unwrap_or_else(|| "-".into()), new.unwrap_or_else(|| "-".into())),
        };
        if let Some(reason) = reason {
            change.push_str(" (");
            change.push_str(&reason);
            change.push(')');
        }
        Ok(HistoryLine { at: r.try_get(0)?, actor: r.try_get(1)?, change, action: r.try_get(9)?, undone: r.try_get(6)? })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let scoring = super::logprobs::scoring(store, id, tokens).await?;
    Ok(Some(Detail { sample, scores, history, note, scoring }))
}

/// The counts on the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    /// Samples the list's filter lets through (`total` when there is none).
    pub matching: i64,
    pub pending: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub hard: i64,
    pub soft: i64,
    pub pseudo: i64,
}

impl Counts {
    fn status(&mut self, status: Status) -> &mut i64 {
        match status {
            Status::Pending => &mut self.pending,
            Status::Accepted => &mut self.accepted,
            Status::Rejected => &mut self.rejected,
        }
    }

    fn label(&mut self, label: LabelType) -> &mut i64 {
        match label {
            LabelType::Hard => &mut self.hard,
            LabelType::Soft => &mut self.soft,
            LabelType::Pseudo => &mut self.pseudo,
        }
    }

    /// Follows a move of samples between statuses or labels.
    pub fn shift(&mut self, m: &Move) {
        match *m {
            Move::Status { from, to, n } if from != to => {
                *self.status(from) -= n;
                *self.status(to) += n;
            }
            Move::Label { from, to, n } if from != to => {
                *self.label(from) -= n;
                *self.label(to) += n;
            }
            _ => {}
        }
    }
}

pub async fn counts(store: &Store, filter: &ListFilter) -> Result<Counts> {
    let r = sqlx::query(
        "SELECT count(*), coalesce(sum(status = 'pending'), 0), coalesce(sum(status = 'accepted'), 0), coalesce(sum(status = 'rejected'), 0), \
         coalesce(sum(label = 'hard'), 0), coalesce(sum(label = 'soft'), 0), coalesce(sum(label = 'pseudo'), 0) FROM samples",
    )
    .fetch_one(&store.pool)
    .await?;
    let total: i64 = r.try_get(0)?;
    let matching = if *filter == ListFilter::All {
        total
    } else {
        let mut args = SqliteArguments::default();
        let cond = filter.condition(&mut args)?;
        sqlx::query_scalar_with(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {FROM} WHERE {cond}")), args)
            .fetch_one(&store.pool)
            .await?
    };
    Ok(Counts {
        total,
        matching,
        pending: r.try_get(1)?,
        accepted: r.try_get(2)?,
        rejected: r.try_get(3)?,
        hard: r.try_get(4)?,
        soft: r.try_get(5)?,
        pseudo: r.try_get(6)?,
    })
}

/// The most samples of one prompt the group view shows.
pub const GROUP_MAX: i64 = 64;

/// What the store holds, cheaply read: it changes when any writer (this TUI, an import, a rule
/// run or a verify in another terminal, an undo there) commits something the screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub last_action: i64,
    pub undone: i64,
    pub last_sample: i64,
    pub scores: i64,
}

pub async fn stamp(store: &Store) -> Result<Stamp> {
    let (last_action, undone, last_sample, scores): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce((SELECT max(id) FROM actions), 0), (SELECT count(*) FROM actions WHERE undone_at IS NOT NULL), \
         coalesce((SELECT max(id) FROM samples), 0), (SELECT count(*) FROM scores)",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(Stamp { last_action, undone, last_sample, scores })
}

/// The samples of one prompt, whole, for the group view.
pub async fn group(store: &Store, prompt_id: i64) -> Result<Vec<super::samples::Sample>> {
    super::samples::of_prompt(store, prompt_id, GROUP_MAX).await
}

/// What the Stats tab draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Charts {
    /// Per verifier: samples per tenth of the score range (0–0.1, …, 0.9–1.0).
    pub score_histograms: Vec<(String, [i64; 10])>,
    /// Samples per token-length bucket: < 256, < 512, …, < 32768, ≥ 32768.
    pub token_histogram: [i64; 9],
    /// (name, accepted, rejected, total) per verifier, among its passing samples. Per teacher
    /// and per source they come with the stats ([`decided_rows`]).
    pub by_verifier: Vec<(String, i64, i64, i64)>,
}

/// Token-length bucket bounds of [`Charts::token_histogram`].
pub const TOKEN_BUCKETS: [&str; 9] = ["<256", "<512", "<1k", "<2k", "<4k", "<8k", "<16k", "<32k", "≥32k"];

/// (name, accepted, rejected, total) per name of a stats grouping (teacher, source), the
/// largest first.
#[must_use]
pub fn decided_rows(
    counts: &std::collections::BTreeMap<String, i64>,
    decided: &std::collections::BTreeMap<String, crate::ops::stats::Decided>,
) -> Vec<(String, i64, i64, i64)> {
    let mut rows: Vec<_> = counts
        .iter()
        .map(|(name, &total)| {
            let d = decided.get(name).copied().unwrap_or_default();
            (name.clone(), d.accepted, d.rejected, total)
        })
        .collect();
    rows.sort_by(|a, b| b.3.cmp(&a.3).then_with(|| b.0.cmp(&a.0)));
    rows
}

pub async fn charts(store: &Store) -> Result<Charts> {
    let mut out = Charts::default();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT v.name, min(9, CAST(sc.score * 10 AS INTEGER)), count(*) FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id \
         WHERE sc.score IS NOT NULL GROUP BY 1, 2 ORDER BY 1",
    )
    .fetch_all(&store.pool)
    .await?;
    for (name, bucket, n) in rows {
        if out.score_histograms.last().is_none_or(|(v, _)| *v != name) {
            out.score_histograms.push((name, [0; 10]));
        }
        if let Some((_, h)) = out.score_histograms.last_mut() {
            h[bucket.clamp(0, 9) as usize] += n;
        }
    }
    let tokens: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT CASE WHEN tokens < 256 THEN 0 WHEN tokens < 512 THEN 1 WHEN tokens < 1024 THEN 2 WHEN tokens < 2048 THEN 3 \
         WHEN tokens < 4096 THEN 4 WHEN tokens < 8192 THEN 5 WHEN tokens < 16384 THEN 6 WHEN tokens < 32768 THEN 7 ELSE 8 END, count(*) \
         FROM samples GROUP BY 1",
    )
    .fetch_all(&store.pool)
    .await?;
    for (b, n) in tokens {
        out.token_histogram[b.clamp(0, 8) as usize] = n;
    }
    out.by_verifier = sqlx::query_as(
        "SELECT v.name, coalesce(sum(s.status = 'accepted'), 0), coalesce(sum(s.status = 'rejected'), 0), count(*) \
         FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id JOIN samples s ON s.id = sc.sample_id WHERE sc.pass = 1 GROUP BY v.name ORDER BY v.name",
    )
    .fetch_all(&store.pool)
    .await?;
    Ok(out)
}

/// What a search hit points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Prompt(i64),
    Teacher(i64),
}

/// One entry of the `/` search's corpus: a teacher's name, or a prompt's first 120 characters
/// on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub target: Target,
    pub text: String,
}

/// The `/` search's corpus: every teacher name and the preview of every prompt that has
/// samples; with `limit`, only the first `limit` prompts.
pub async fn search_corpus(store: &Store, limit: Option<usize>) -> Result<Vec<Entry>> {
    let teachers: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM teachers ORDER BY id").fetch_all(&store.pool).await?;
    let mut out: Vec<Entry> = teachers.into_iter().map(|(id, name)| Entry { target: Target::Teacher(id), text: name }).collect();
    let prompts: Vec<(i64, String)> = match limit {
        None => sqlx::query_as(
            "SELECT prompt_id, substr(text, 1, 120) FROM prompt_texts WHERE prompt_id IN (SELECT prompt_id FROM samples) ORDER BY prompt_id",
        ),
        // Probing the index per prompt stops at the limit; `IN` would list every sample first.
        Some(limit) => sqlx::query_as(
            "SELECT prompt_id, substr(text, 1, 120) FROM prompt_texts pt \
             WHERE EXISTS (SELECT 1 FROM samples s WHERE s.prompt_id = pt.prompt_id) ORDER BY prompt_id LIMIT ?",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
    }
    .fetch_all(&store.pool)
    .await?;
    out.extend(
        prompts.into_iter().map(|(id, preview)| Entry { target: Target::Prompt(id), text: preview.replace(['\n', '\r', '\t'], " ") }),
    );
    Ok(out)
}

/// The search corpus's size, at most: prompts and teachers.
pub async fn search_corpus_bound(store: &Store) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT (SELECT count(*) FROM prompts) + (SELECT count(*) FROM teachers)").fetch_one(&store.pool).await?)
}

/// An export of the history, for the Export tab.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PastExport {
    pub id: i64,
    pub created_at: i64,
    pub format: String,
    pub samples: i64,
    pub tokens: i64,
    pub out_dir: String,
}

/// The last 20 exports, newest first.
pub async fn past_exports(store: &Store) -> Result<Vec<PastExport>> {
    Ok(sqlx::query_as("SELECT id, created_at, format, samples, tokens, out_dir FROM exports ORDER BY id DESC LIMIT 20")
        .fetch_all(&store.pool)
        .await?)
}

/// A training run of the history, for the Train tab.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PastRun {
    pub id: i64,
    pub status: String,
    pub base_model: String,
    /// The last step with a metric.
    pub steps: i64,
    /// The last training loss.
    pub loss: Option<f64>,
    /// The last validation loss.
    pub validation_loss: Option<f64>,
    /// Where its adapter, checkpoints and metrics went.
    pub adapter_dir: Option<String>,
}

/// The last 20 training runs, newest first.
pub async fn past_runs(store: &Store) -> Result<Vec<PastRun>> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.status, r.base_model, coalesce(max(m.step), 0) AS steps, \
         (SELECT loss FROM run_metrics WHERE run_id = r.id AND split = 'train' ORDER BY step DESC LIMIT 1) AS loss, \
         (SELECT loss FROM run_metrics WHERE run_id = r.id AND split = 'validation' ORDER BY step DESC LIMIT 1) AS validation_loss, \
         r.adapter_dir FROM runs r LEFT JOIN run_metrics m ON m.run_id = r.id GROUP BY r.id ORDER BY r.id DESC LIMIT 20",
    )
    .fetch_all(&store.pool)
    .await?)
}

/// A run's loss curves as the store keeps them (every step's training loss, every validation),
/// as (step, loss) points for a chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCurves {
    pub run_id: i64,
    pub train: Vec<(f64, f64)>,
    pub validation: Vec<(f64, f64)>,
}

pub async fn run_curves(store: &Store, run_id: i64) -> Result<RunCurves> {
    let rows: Vec<(String, i64, f64)> = sqlx::query_as("SELECT split, step, loss FROM run_metrics WHERE run_id = ? ORDER BY split, step")
        .bind(run_id)
        .fetch_all(&store.pool)
        .await?;
    let mut curves = RunCurves { run_id, ..RunCurves::default() };
    for (split, step, loss) in rows {
        let points = if split == "validation" { &mut curves.validation } else { &mut curves.train };
        points.push((step as f64, loss));
    }
    Ok(curves)
}
