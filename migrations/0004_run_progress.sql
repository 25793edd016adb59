-- The trainer's per-step gradient norm, and how far a run is (for the TUI's Train tab).
ALTER TABLE run_metrics ADD COLUMN grad_norm REAL;
ALTER TABLE runs ADD COLUMN total_steps INTEGER;
ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
