-- Issue 14: reconciliation (对账) of a channel's daily bill against paygate's books.
-- A statement per run: reruns of the same day add a version (UNIQUE decides a concurrent rerun: one wins).
-- `carried` lists paygate rows the day's bill did not show (a payment at 23:59:59 billed the next day): the next
-- day's run looks for them before flagging; `matched_elsewhere` lists paygate rows of other days this bill showed,
-- so their own day does not carry them. The raw file is kept as downloaded.
CREATE TABLE reconciliations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    provider TEXT NOT NULL CHECK (provider IN ('wechat', 'alipay')),
    bill_date TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version > 0),
    created BIGINT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('consistent', 'discrepancies')),
    statement TEXT NOT NULL,
    carried TEXT NOT NULL,
    matched_elsewhere TEXT NOT NULL,
    UNIQUE (app_id, livemode, provider, bill_date, version)
);
CREATE INDEX reconciliations_scope ON reconciliations (app_id, livemode, seq);

CREATE TABLE reconciliation_files (
    reconciliation_id TEXT PRIMARY KEY REFERENCES reconciliations(id),
    content BYTEA NOT NULL
);

-- One row per thing found wrong, whatever the number of runs that see it: (scope, provider, kind, key) is unique,
-- so a rerun adds nothing. A discrepancy is open until a run finds the row consistent (resolved_automatically)
-- or a person resolves it with a note.
CREATE TABLE reconciliation_discrepancies (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    provider TEXT NOT NULL CHECK (provider IN ('wechat', 'alipay')),
    reconciliation_id TEXT NOT NULL REFERENCES reconciliations(id),
    bill_date TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('missing_locally', 'missing_at_channel', 'mismatch')),
    object_key TEXT NOT NULL,
    details TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'resolved_automatically', 'resolved_manually')),
    resolution_note TEXT,
    created BIGINT NOT NULL,
    resolved BIGINT,
    UNIQUE (app_id, livemode, provider, kind, object_key)
);
CREATE INDEX reconciliation_discrepancies_scope ON reconciliation_discrepancies (app_id, livemode, seq);
CREATE INDEX reconciliation_discrepancies_open ON reconciliation_discrepancies (app_id, livemode, provider)
    WHERE state = 'open';

-- A day's books: charges by when they were paid, refunds by when they succeeded (and the pending ones).
CREATE INDEX charges_scope_paid ON charges (app_id, livemode, time_paid) WHERE time_paid IS NOT NULL;
CREATE INDEX refunds_scope_succeeded ON refunds (app_id, livemode, time_succeed) WHERE time_succeed IS NOT NULL;
CREATE INDEX refunds_scope_pending ON refunds (app_id, livemode, created) WHERE status = 'pending';
