-- 0001_core: notifications (raw, durable), rejected bodies, alerts by fingerprint with status history,
-- incidents with their alerts and timeline. Times are UTC text "YYYY-MM-DDTHH:MM:SS.ffffffZ".

CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at     TEXT    NOT NULL,
    received_ts     REAL    NOT NULL,              -- unix seconds, for lag metrics
    body            BLOB    NOT NULL,              -- the raw request body, exactly as received
    group_key       TEXT,
    state           TEXT    NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'applied', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_ts REAL    NOT NULL DEFAULT 0,
    lease_until_ts  REAL    NOT NULL DEFAULT 0,
    events          TEXT,                          -- JSON incident events produced when applied
    applied_at      TEXT,
    done_at         TEXT
);
CREATE INDEX notifications_pending ON notifications (state, id) WHERE state IN ('received', 'applied');

CREATE TABLE rejected (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    problems      TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    content_type  TEXT,
    body_size     INTEGER NOT NULL,
    body          BLOB    NOT NULL,                -- truncated to the configured cap
    truncated     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE alerts (
    fingerprint   TEXT PRIMARY KEY,
    alertname     TEXT NOT NULL DEFAULT '',
    labels        TEXT NOT NULL,                   -- JSON object, values stored literally
    annotations   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at     TEXT,
    ends_at       TEXT,
    generator_url TEXT NOT NULL DEFAULT '',
    updated_at    TEXT NOT NULL
);

-- One row per distinct state an alert was seen in; the unique key makes repeats and retries no-ops.
CREATE TABLE alert_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint     TEXT NOT NULL REFERENCES alerts (fingerprint),
    status          TEXT NOT NULL,
    starts_at       TEXT NOT NULL DEFAULT '',
    ends_at         TEXT,
    notification_id INTEGER REFERENCES notifications (id),
    recorded_at     TEXT NOT NULL,
    UNIQUE (fingerprint, status, starts_at)
);

CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    runbook_id   TEXT NOT NULL,
    incident_key TEXT NOT NULL,
    title        TEXT NOT NULL DEFAULT '',
    model        TEXT,
    group_labels TEXT NOT NULL DEFAULT '{}',       -- JSON: the group_by label values
    state        TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'contained', 'resolved', 'closed')),
    severity     TEXT NOT NULL CHECK (severity IN ('SEV1', 'SEV2', 'SEV3')),
    opened_at    TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    resolved_at  TEXT,
    closed_at    TEXT
);
-- At most one live incident per runbook and key: concurrent writers cannot open a second one.
CREATE UNIQUE INDEX incidents_live_key ON incidents (runbook_id, incident_key)
    WHERE state IN ('open', 'contained');
CREATE INDEX incidents_state ON incidents (state, id);
CREATE INDEX incidents_model ON incidents (model, id);

CREATE TABLE incident_alerts (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    fingerprint TEXT    NOT NULL REFERENCES alerts (fingerprint),
    status      TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at   TEXT,
    ends_at     TEXT,
    joined_at   TEXT    NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);
CREATE INDEX incident_alerts_fingerprint ON incident_alerts (fingerprint);

CREATE TABLE timeline (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    at              TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    data            TEXT    NOT NULL DEFAULT '{}',
    dedupe_key      TEXT,                          -- same key on the same incident = recorded once
    notification_id INTEGER REFERENCES notifications (id)
);
CREATE UNIQUE INDEX timeline_dedupe ON timeline (incident_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX timeline_incident ON timeline (incident_id, id);
