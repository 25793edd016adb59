-- The trainer's per-step gradient norm, beside loss, learning rate and tokens/s.
ALTER TABLE run_metrics ADD COLUMN grad_norm REAL;
