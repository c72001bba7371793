-- Issue 13: the merchant console's users, sessions and audit log.
-- A user belongs to one app; the email is unique within it. Only an argon2id PHC string of the password is kept.
CREATE TABLE console_users (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'support', 'viewer')),
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created INTEGER NOT NULL,
    UNIQUE (app_id, email)
);
-- A session is found by the SHA-256 of its cookie token (the token itself is never stored). Idle and absolute
-- expiry are decided by the conditional UPDATE that touches `last_seen`, not by reading the row first.
CREATE TABLE console_sessions (
    token_hash BLOB PRIMARY KEY,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
-- Who did what to which object, with the object before and after (JSON text); written by the transaction that
-- makes the change when the change is paygate's own (a user created, a refund reserved).
CREATE TABLE console_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    user_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before TEXT,
    after TEXT,
    created INTEGER NOT NULL
);
CREATE INDEX console_audit_app_seq ON console_audit (app_id, seq);
-- The console's payment page shows the events of one order, its charges and refunds: each event names its
-- object's id (written with the event; events written before this migration have none and are not shown there).
ALTER TABLE events ADD COLUMN object_id TEXT;
CREATE INDEX events_object ON events (object_id);
