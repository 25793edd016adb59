-- The whole data model of DESIGN.md §Concepts.
--
-- Layout for speed (DESIGN.md §Measured): the columns rules filter and update (status, label,
-- tokens, finish_reason...) live in narrow tables (`prompts`, `samples`, `scores`); the big texts
-- live apart (`prompt_texts`, `sample_texts`, `sample_logprobs`), so a rule that flips the status
-- of 100k samples rewrites small records, not 5 KB rows with their overflow pages.
-- The page size (16 KiB) and WAL are set by the connection before this migration runs.

CREATE TABLE teachers (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE sources (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- One row per imported file and run. `finished_at` stays NULL when the run was killed: the
-- samples it committed stay (each chunk is its own transaction) and a rerun completes it.
CREATE TABLE imports (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL,
    file_sha256   TEXT NOT NULL,
    format        TEXT NOT NULL,
    options       TEXT NOT NULL,          -- JSON: the flags the import ran with
    token_counter TEXT NOT NULL,          -- how token counts were made: 'estimate' or 'tokenizer:<file>'
    started_at    INTEGER NOT NULL,       -- unix seconds
    finished_at   INTEGER,
    records       INTEGER NOT NULL DEFAULT 0,
    prompts_added INTEGER NOT NULL DEFAULT 0,
    samples_added INTEGER NOT NULL DEFAULT 0,
    scores_added  INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0
);
-- "Was this exact file imported already?" is asked on every import.
CREATE INDEX imports_by_file ON imports (file_sha256);

CREATE TABLE prompts (
    id            INTEGER PRIMARY KEY,
    -- sha256 of the prompt's turns (system turns excluded): the same prompt text from any file
    -- or teacher is one prompt.
    hash          BLOB NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('reasoning', 'general')),
    source_id     INTEGER REFERENCES sources (id),
    has_reference INTEGER NOT NULL DEFAULT 0,
    import_id     INTEGER REFERENCES imports (id),
    created_at    INTEGER NOT NULL
);

CREATE TABLE prompt_texts (
    prompt_id INTEGER PRIMARY KEY REFERENCES prompts (id) ON DELETE CASCADE,
    text      TEXT NOT NULL,              -- the task as a curator reads it: the last user turn
    messages  TEXT,                       -- JSON chat turns before the answer, when there is more than one
    tools     TEXT,                       -- JSON tool definitions offered to the teacher
    reference TEXT,                       -- the reference answer: a hard label
    metadata  TEXT                        -- JSON: the input row's other fields (ids, level, solution...)
);

CREATE TABLE samples (
    id               INTEGER PRIMARY KEY,
    prompt_id        INTEGER NOT NULL REFERENCES prompts (id),
    teacher_id       INTEGER NOT NULL REFERENCES teachers (id),
    source_id        INTEGER REFERENCES sources (id),
    import_id        INTEGER REFERENCES imports (id),
    -- Where the sample came from: sha256 of (input record bytes, record number, generation
    -- index), 16 bytes. Importing the same file again, or rerunning a killed import, adds nothing.
    origin           BLOB NOT NULL UNIQUE,
    -- sha256 of (prompt, reasoning, answer, tool calls): equal for exact duplicates, which
    -- `reject duplicates` finds. Not unique: duplicates are data to curate, not to hide.
    content_hash     BLOB NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
    label            TEXT NOT NULL CHECK (label IN ('hard', 'soft', 'pseudo')),
    finish_reason    TEXT,
    tokens           INTEGER NOT NULL,    -- reasoning_tokens + answer_tokens
    reasoning_tokens INTEGER NOT NULL,
    answer_tokens    INTEGER NOT NULL,
    has_logprobs     INTEGER NOT NULL DEFAULT 0,
    -- Who made the current status: NULL (nobody yet), 'curator', or 'rule:<name>'. Rules read it
    -- so that they do not overturn a curator's own decision.
    decided_by       TEXT,
    decided_at       INTEGER,
    created_at       INTEGER NOT NULL
);
-- The group view and best-of-n read all samples of one prompt.
CREATE INDEX samples_by_prompt ON samples (prompt_id);

CREATE TABLE sample_texts (
    sample_id  INTEGER PRIMARY KEY REFERENCES samples (id) ON DELETE CASCADE,
    system     TEXT,                      -- the system prompt the teacher was given
    reasoning  TEXT,                      -- chain of thought, kept apart from the answer
    answer     TEXT NOT NULL,
    tool_calls TEXT,                      -- JSON, OpenAI shape
    params     TEXT,                      -- JSON generation parameters (temperature, top_p, max_tokens...)
    metadata   TEXT                       -- JSON extras (reasoning markers, extracted prediction, usage)
);

-- Top-k token log-probabilities (soft targets), in the OpenAI/vLLM `logprobs.content` shape.
CREATE TABLE sample_logprobs (
    sample_id   INTEGER PRIMARY KEY REFERENCES samples (id) ON DELETE CASCADE,
    k           INTEGER NOT NULL,         -- alternatives kept per position
    temperature REAL,                     -- the sampling temperature, when known
    positions   INTEGER NOT NULL,
    content     TEXT NOT NULL
);

CREATE TABLE verifiers (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,             -- 'imported', 'math', 'cmd', 'judge', ...
    config     TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE scores (
    sample_id   INTEGER NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    verifier_id INTEGER NOT NULL REFERENCES verifiers (id),
    score       REAL,                     -- in [0,1]; NULL when the verifier could not run
    pass        INTEGER,                  -- 0/1; NULL when the verifier could not run
    details     TEXT,                     -- JSON
    error       TEXT,                     -- why the verifier failed: a failure is never a score of 0
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (sample_id, verifier_id)
) WITHOUT ROWID;
-- Rules filter on one verifier's scores across all samples.
CREATE INDEX scores_by_verifier ON scores (verifier_id, score);

CREATE TABLE rules (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    source     TEXT NOT NULL,             -- the rule in the rule language
    position   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The unit of undo: one key press, one batch of marked samples, one rule application.
CREATE TABLE actions (
    id          INTEGER PRIMARY KEY,
    actor       TEXT NOT NULL,            -- 'curator' or 'rule:<name>'
    rule_id     INTEGER REFERENCES rules (id),
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    undone_at   INTEGER
);

-- The history: every change a decision made, with what was there before, so undo is exact.
-- Keyed by action first: a rule's decisions are appended in one run of pages and undo reads them
-- as one range, with no second index to maintain on 100k-row applications.
CREATE TABLE decisions (
    action_id INTEGER NOT NULL REFERENCES actions (id),
    sample_id INTEGER NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    field     TEXT NOT NULL CHECK (field IN ('status', 'label', 'tag', 'untag', 'note')),
    old_value TEXT,
    new_value TEXT,
    old_by    TEXT,                       -- samples.decided_by before the change
    old_at    INTEGER,                    -- samples.decided_at before the change
    reason    TEXT,                       -- e.g. which sample a near-duplicate duplicates
    PRIMARY KEY (action_id, sample_id, field)
) WITHOUT ROWID;
-- A sample's history, for the detail view and the curator-label guard of rules.
CREATE INDEX decisions_by_sample ON decisions (sample_id);

CREATE TABLE notes (
    sample_id  INTEGER PRIMARY KEY REFERENCES samples (id) ON DELETE CASCADE,
    note       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE tags (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE sample_tags (
    sample_id INTEGER NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    tag_id    INTEGER NOT NULL REFERENCES tags (id),
    PRIMARY KEY (sample_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX sample_tags_by_tag ON sample_tags (tag_id);

-- An export is an immutable snapshot of the accepted set written to files.
CREATE TABLE exports (
    id         INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    format     TEXT NOT NULL,
    out_dir    TEXT NOT NULL,
    options    TEXT NOT NULL,             -- JSON
    manifest   TEXT NOT NULL,             -- JSON, as written to manifest.json
    samples    INTEGER NOT NULL,
    tokens     INTEGER NOT NULL
);

-- A training run of the built-in LoRA trainer.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    base_model  TEXT NOT NULL,
    export_id   INTEGER REFERENCES exports (id),
    hyperparams TEXT NOT NULL,            -- JSON
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
    adapter_dir TEXT,
    started_at  INTEGER,
    finished_at INTEGER,
    error       TEXT
);

CREATE TABLE run_metrics (
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    split        TEXT NOT NULL CHECK (split IN ('train', 'validation')),
    loss         REAL NOT NULL,
    lr           REAL,
    tokens_per_s REAL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, step, split)
) WITHOUT ROWID;

-- Small facts about the store, e.g. how far the full-text index has caught up.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Full-text search over prompt, reasoning and answer, keyed by sample id. Contentless: the
-- texts already live in prompt_texts/sample_texts, so the index does not store them twice.
-- It is filled after a bulk import (store::fts), never by trigger: a trigger made imports 5x slower.
CREATE VIRTUAL TABLE sample_fts USING fts5 (
    prompt, reasoning, answer,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
