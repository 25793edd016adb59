-- A generation in flight says how far it is, so the TUI can show it on its status line.
-- `heartbeat_at` is refreshed every few seconds while the run lives: a row with `finished_at`
-- NULL and an old heartbeat is a run that was killed, not one still going.
ALTER TABLE imports ADD COLUMN heartbeat_at INTEGER;
ALTER TABLE imports ADD COLUMN progress TEXT; -- JSON: {"teacher", "requests", "total", "samples", "failures", "tokens"}
