-- Issue 11: payments and refunds pending at a real channel (WeChat Pay) are asked about again on a backoff
-- (the worker's poller). One row per charge or refund still to be asked about; it goes when the answer is final.
-- `next_at` is claimed by a conditional UPDATE (`next_at` and `attempts` as read), so two worker nodes never both
-- ask in the same round; a node that dies after its claim leaves the row due again at the claimed time.
CREATE TABLE channel_polls (
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    object_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, object_id)
);
CREATE INDEX channel_polls_due ON channel_polls (next_at);
