-- The number format each detection run embedded in ('float32', 'bfloat16' or 'float16'): vectors
-- from different formats differ slightly, so a run's record says which it used. Runs before this
-- migration embedded in float16 on CUDA and float32 elsewhere.

ALTER TABLE detection_runs ADD COLUMN precision VARCHAR;
UPDATE detection_runs SET precision = CASE WHEN device = 'cuda' THEN 'float16' ELSE 'float32' END;
