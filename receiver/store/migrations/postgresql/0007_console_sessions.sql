-- 0007_console_sessions: the console's sign-in sessions, shared by every replica (any replica accepts a
-- session another one created). Only a SHA-256 of the session token is stored, never the token itself.
CREATE TABLE console_sessions (
    token_hash  TEXT    PRIMARY KEY,
    username    TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    method      TEXT    NOT NULL,             -- token | password | proxy
    csrf_token  TEXT    NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,  -- unix seconds
    expires_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
