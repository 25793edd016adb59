-- A curator's edit of a sample's answer, or of its prompt's reference answer: a hard label.
-- The edited text is stored in place (sample_texts.answer, prompt_texts.reference), so list,
-- export, verify and search read it with no join; the text it replaced is kept here, under the
-- action that made it, so undo puts it back exactly and redo makes the edit again.
-- Apart from `decisions`: those rows are narrow and many (a rule writes 100k at once), these
-- hold whole texts and come one a key press. The edit's label change (to hard) is an ordinary
-- `decisions` row of the same action.
CREATE TABLE text_edits (
    id         INTEGER PRIMARY KEY,
    action_id  INTEGER NOT NULL REFERENCES actions (id),
    sample_id  INTEGER NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    field      TEXT NOT NULL CHECK (field IN ('answer', 'reference')),
    old_text   TEXT,                      -- NULL: the prompt had no reference
    new_text   TEXT NOT NULL,
    old_tokens INTEGER,                   -- samples.answer_tokens before an answer edit, and after
    new_tokens INTEGER,
    UNIQUE (action_id, sample_id, field)
);
-- A sample's history (the detail view) and `stats` (samples edited) read by sample.
CREATE INDEX text_edits_by_sample ON text_edits (sample_id);
