-- 0006_retention: what survives pruning, and what finds the prunable rows cheaply.
-- A pruned (closed, old) incident keeps its row (the summary) and its review, rendered from the timeline
-- just before the timeline, alert membership, outbox, ledger and timer rows were deleted.
CREATE TABLE incident_reviews (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
    markdown    TEXT    NOT NULL,
    archived_at TEXT    NOT NULL
);

-- Bodies still to prune: processed notifications (done/failed) and rejected requests whose body is not yet
-- emptied. Partial, so a pruned row leaves the index and each pass reads only what is left to do.
CREATE INDEX notifications_prunable ON notifications (received_ts)
    WHERE state IN ('done', 'failed') AND length(body) > 0;
CREATE INDEX rejected_prunable ON rejected (received_at) WHERE length(body) > 0;

-- Leases on periodic maintenance jobs, so that of several replicas one does the work at a time.
CREATE TABLE maintenance_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    lease_until REAL NOT NULL
);
