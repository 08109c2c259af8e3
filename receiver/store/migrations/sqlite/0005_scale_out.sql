-- 0005_scale_out: order within an Alertmanager group (not across groups), and the ledger's 'unknown' state.
-- Notifications without a group key share the group ''.
UPDATE notifications SET group_key = '' WHERE group_key IS NULL;
CREATE INDEX notifications_group_pending ON notifications (group_key, id) WHERE state IN ('received', 'applied');

-- SQLite cannot alter a CHECK constraint: the ledger is rebuilt with 'unknown' (a request whose outcome
-- cannot be known, e.g. a read timeout after it was sent) among its final states; every row is kept.
CREATE TABLE action_ledger_v5 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  TEXT    NOT NULL,
    phase        TEXT    NOT NULL CHECK (phase IN ('contain', 'recover', 'escalate')),
    step_id      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    model        TEXT    NOT NULL DEFAULT '',
    runbook_id   TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL CHECK (state IN ('claimed', 'running', 'succeeded', 'failed', 'refused',
                                                   'skipped', 'dry_run', 'interrupted', 'unknown')),
    reason       TEXT,
    automatic    INTEGER NOT NULL DEFAULT 1,
    containment  INTEGER NOT NULL DEFAULT 0,
    params       TEXT    NOT NULL DEFAULT '{}',
    snapshot     TEXT,
    result       TEXT,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    owner        TEXT    NOT NULL,
    lease_until  REAL,
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    finished_at  REAL,
    UNIQUE (incident_id, phase, step_id, kind)
);
INSERT INTO action_ledger_v5 SELECT id, incident_id, phase, step_id, kind, model, runbook_id, state, reason,
    automatic, containment, params, snapshot, result, error, attempts, owner, lease_until, created_at,
    updated_at, finished_at FROM action_ledger;
DROP TABLE action_ledger;
ALTER TABLE action_ledger_v5 RENAME TO action_ledger;
CREATE INDEX action_ledger_model_time ON action_ledger (model, containment, created_at);
CREATE INDEX action_ledger_open ON action_ledger (state, lease_until);
