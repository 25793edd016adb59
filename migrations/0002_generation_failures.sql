-- Requests to a teacher that kept failing after their retries: recorded, never silently dropped.
CREATE TABLE generation_failures (
    id         INTEGER PRIMARY KEY,
    prompt_id  INTEGER NOT NULL REFERENCES prompts (id),
    teacher    TEXT NOT NULL,
    error      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX generation_failures_by_prompt ON generation_failures (prompt_id);
