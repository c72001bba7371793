-- Issue 12: an Alipay royalty settlement without an answer stays pending and is asked about on the poller's
-- backoff (alipay.trade.order.settle.query), like a charge or a refund: channel_polls takes the kind 'share'.
-- SQLite cannot change a CHECK in place: the table is rebuilt with its rows.
CREATE TABLE channel_polls_next (
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund', 'share')),
    object_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, object_id)
);
INSERT INTO channel_polls_next (kind, object_id, app_id, livemode, created, next_at, attempts)
    SELECT kind, object_id, app_id, livemode, created, next_at, attempts FROM channel_polls;
DROP TABLE channel_polls;
ALTER TABLE channel_polls_next RENAME TO channel_polls;
CREATE INDEX channel_polls_due ON channel_polls (next_at);
