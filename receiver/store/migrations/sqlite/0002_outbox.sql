-- 0002_outbox: durable outgoing messages (status updates) with per-channel ordering and retries.
-- dedupe_key is UNIQUE: enqueuing the same message again (retry, HA duplicate, restart) is a no-op.
-- Delivery order within a channel is id order; a pending head blocks later rows of its channel only.
-- Times are unix seconds (REAL).
CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    dedupe_key       TEXT    NOT NULL UNIQUE,
    payload          TEXT    NOT NULL,                 -- the channel's JSON body, exactly as it will be sent
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL    NOT NULL,
    lease_until      REAL    NOT NULL DEFAULT 0,       -- a deliverer holds the row until then
    last_error       TEXT,
    last_status      INTEGER,                          -- last HTTP status, if any
    created_at       REAL    NOT NULL,
    delivered_at     REAL,
    failed_at        REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (channel, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_incident ON outbox (incident_id, id);
