-- 0008_people_in_the_loop: approval gates, Slack app threads, and signed inbound requests (Slack
-- interactions, PagerDuty webhooks) recorded before they are answered and acted on once.

-- One approval per (incident, phase, step): requesting again is a no-op. The first decision moves it out of
-- 'pending' with a conditional UPDATE (... WHERE state = 'pending'), so exactly one decision wins.
CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    phase        TEXT    NOT NULL,
    step_id      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    summary      TEXT    NOT NULL DEFAULT '',
    role         TEXT    NOT NULL DEFAULT 'responder',
    state        TEXT    NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
    requested_at TEXT    NOT NULL,
    timeout_at   TEXT    NOT NULL,
    timeout_ts   REAL    NOT NULL,
    on_timeout   TEXT    NOT NULL CHECK (on_timeout IN ('proceed', 'skip')),
    decided_by   TEXT,
    decided_at   TEXT,
    reason       TEXT,
    step         TEXT    NOT NULL DEFAULT '{}',  -- the gated step as requested (JSON): what approval runs
    applied_at   TEXT,                           -- the decision's consequence (run / skip) has been carried out
    UNIQUE (incident_id, phase, step_id)
);
CREATE INDEX approvals_pending ON approvals (state, timeout_ts);
CREATE INDEX approvals_unapplied ON approvals (applied_at) WHERE applied_at IS NULL AND state <> 'pending';

-- Slack app mode: the incident's first message per channel; later updates reply in its thread.
CREATE TABLE chat_threads (
    channel      TEXT    NOT NULL,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    conversation TEXT    NOT NULL,
    thread_ts    TEXT    NOT NULL,
    created_at   REAL    NOT NULL,
    PRIMARY KEY (channel, incident_id)
);

-- Signed requests from Slack and PagerDuty: unique per (source, key) (a Slack request signature, a
-- PagerDuty event id), so a replay or a second delivery is recognised; processed from here by a worker.
CREATE TABLE inbound_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    dedupe_key  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until REAL    NOT NULL DEFAULT 0,
    last_error  TEXT,
    received_at REAL    NOT NULL,
    done_at     REAL,
    UNIQUE (source, dedupe_key)
);
CREATE INDEX inbound_events_pending ON inbound_events (state, lease_until);
