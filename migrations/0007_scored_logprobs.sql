-- Soft targets a teacher scored afterwards (`retort score-logprobs`: teacher-forced top-K
-- log-probs of an existing trace) are stored packed: the token ids of a vocabulary and the
-- log-probs quantised to 1/1024 nat, bit-packed (about 89 bytes a token at K = 20 for a
-- 152k vocabulary, against some 2 KB as JSON). Log-probs that came with an API answer keep
-- their JSON shape (OpenAI's `logprobs.content`, tokens as text).
--
-- Each row also holds its completion's confidence, what rules filter on: the mean and the
-- least log-prob of the tokens the trace has (perplexity is exp(-mean), compiled from it).

-- A tokenizer's vocabulary, once per store: each token's bytes, for showing scored tokens.
CREATE TABLE vocabularies (
    id      INTEGER PRIMARY KEY,
    sha256  TEXT NOT NULL UNIQUE,         -- of `tokens`
    name    TEXT NOT NULL,                -- the tokenizer it was read from
    size    INTEGER NOT NULL,             -- tokens
    tokens  BLOB NOT NULL                 -- per id, in order: a LEB128 length, then the bytes
);

CREATE TABLE sample_logprobs_new (
    sample_id     INTEGER PRIMARY KEY REFERENCES samples (id) ON DELETE CASCADE,
    k             INTEGER NOT NULL,       -- alternatives kept per position
    temperature   REAL,                   -- the temperature the log-probs were taken at, when known
    positions     INTEGER NOT NULL,
    content       TEXT,                   -- JSON, OpenAI's `logprobs.content` shape (from an API answer)
    packed        BLOB,                   -- retort's packed top-K, token ids of `vocabulary_id` (scored)
    vocabulary_id INTEGER REFERENCES vocabularies (id),
    scorer_id     INTEGER REFERENCES teachers (id), -- who scored them; NULL: the sample's own teacher
    mean_logprob  REAL,                   -- over the trace's own tokens
    min_logprob   REAL,
    CHECK ((content IS NULL) <> (packed IS NULL)),
    CHECK (packed IS NULL OR vocabulary_id IS NOT NULL)
);

INSERT INTO sample_logprobs_new (sample_id, k, temperature, positions, content, mean_logprob, min_logprob)
SELECT sample_id, k, temperature, positions, content,
       (SELECT avg(json_extract(p.value, '$.logprob')) FROM json_each(l.content) p),
       (SELECT min(json_extract(p.value, '$.logprob')) FROM json_each(l.content) p)
FROM sample_logprobs l;

DROP TABLE sample_logprobs;
ALTER TABLE sample_logprobs_new RENAME TO sample_logprobs;
