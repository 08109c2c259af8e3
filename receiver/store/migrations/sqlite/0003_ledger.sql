-- Action ledger: one row per (incident, phase, step, action kind). The UNIQUE key is the exactly-once
-- guarantee: a step is claimed by inserting its row inside BEGIN IMMEDIATE; whoever inserts it runs it.
-- state: claimed -> running -> succeeded | failed | refused | skipped | dry_run | interrupted
CREATE TABLE IF NOT EXISTS action_ledger (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  TEXT    NOT NULL,
    phase        TEXT    NOT NULL CHECK (phase IN ('contain', 'recover', 'escalate')),
    step_id      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    model        TEXT    NOT NULL DEFAULT '',
    runbook_id   TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL CHECK (state IN ('claimed', 'running', 'succeeded', 'failed', 'refused',
                                                   'skipped', 'dry_run', 'interrupted')),
    reason       TEXT,                       -- why skipped/refused/interrupted (cooldown, flap_guard, ...)
    automatic    INTEGER NOT NULL DEFAULT 1, -- 0 when a human asked for it (admin API / CLI)
    containment  INTEGER NOT NULL DEFAULT 0, -- 1 for kinds that change serving (cooldown, flap guard)
    params       TEXT    NOT NULL DEFAULT '{}', -- rendered parameters, JSON
    snapshot     TEXT,                       -- state read just before running, JSON
    result       TEXT,                       -- ActionResult.data, JSON
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    owner        TEXT    NOT NULL,           -- which process/thread claimed it
    lease_until  REAL,                       -- a claimed/running row past its lease was interrupted
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    finished_at  REAL,
    UNIQUE (incident_id, phase, step_id, kind)
);
CREATE INDEX IF NOT EXISTS action_ledger_model_time ON action_ledger (model, containment, created_at);
CREATE INDEX IF NOT EXISTS action_ledger_open ON action_ledger (state, lease_until);
