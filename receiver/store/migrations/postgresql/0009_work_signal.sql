-- 0009_work_signal: every committed batch of notifications wakes the workers of every replica at once
-- (LISTEN receiver_work), instead of at their next poll. One NOTIFY per statement, delivered at commit,
-- so a group commit of many rows is one signal; a worker that misses it still polls.
-- (The body is a quoted string, not $$-quoted: the migration runner splits statements at ';' outside
-- strings and comments.)
CREATE FUNCTION receiver_notify_work() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN PERFORM pg_notify(''receiver_work'', ''''); RETURN NULL; END';
CREATE TRIGGER notifications_wake_workers AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION receiver_notify_work();
