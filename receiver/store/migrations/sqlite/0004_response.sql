-- 0004_response: acknowledgement on incidents, and durable timers for verification, escalation and the
-- status-update cadence (they survive restarts: the scheduler picks up whatever is due).
ALTER TABLE incidents ADD COLUMN acknowledged_at TEXT;
ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT;
ALTER TABLE incidents ADD COLUMN contained_at TEXT;
ALTER TABLE incidents ADD COLUMN escalated_at TEXT;

-- One timer per (incident, kind); rescheduling updates the row, so a repeat never adds a second timer.
CREATE TABLE timers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id    INTEGER NOT NULL REFERENCES incidents (id),
    kind           TEXT    NOT NULL,               -- verify | escalate | update | upgrade
    due_ts         REAL    NOT NULL,               -- unix seconds
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'cancelled')),
    payload        TEXT    NOT NULL DEFAULT '{}',  -- JSON, e.g. the verification state machine
    lease_until_ts REAL    NOT NULL DEFAULT 0,     -- claimed by a scheduler until then
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    updated_at     REAL    NOT NULL,
    UNIQUE (incident_id, kind)
);
CREATE INDEX timers_due ON timers (state, due_ts);
