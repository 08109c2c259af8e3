-- 0009_work_signal: PostgreSQL wakes every replica's workers when notifications are committed (a trigger
-- and LISTEN). SQLite has no signal between processes: workers on one SQLite file poll instead
-- (worker_poll_interval). This version exists so both dialects keep the same schema numbers.
SELECT 1;
