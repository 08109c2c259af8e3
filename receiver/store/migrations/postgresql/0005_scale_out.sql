-- 0005_scale_out: order within an Alertmanager group (not across groups), and the ledger's 'unknown' state.
UPDATE notifications SET group_key = '' WHERE group_key IS NULL;
CREATE INDEX notifications_group_pending ON notifications (group_key, id) WHERE state IN ('received', 'applied');
ALTER TABLE action_ledger DROP CONSTRAINT action_ledger_state_check;
ALTER TABLE action_ledger ADD CONSTRAINT action_ledger_state_check CHECK (state IN ('claimed', 'running',
    'succeeded', 'failed', 'refused', 'skipped', 'dry_run', 'interrupted', 'unknown'));
