CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    public_key_pem TEXT,
    -- What happens to money that arrives after an order was closed or canceled.
    late_payment TEXT NOT NULL DEFAULT 'refund' CHECK (late_payment IN ('refund', 'hold'))
);

CREATE TABLE api_keys (
    key_hash BLOB PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    hint TEXT NOT NULL
);

CREATE TABLE orders (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'paid', 'canceled', 'refunded', 'closed', 'paid_after_close')),
    uid TEXT,
    merchant_order_no TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    coupon_amount INTEGER NOT NULL CHECK (coupon_amount >= 0),
    actual_amount INTEGER NOT NULL CHECK (actual_amount > 0 AND actual_amount + coupon_amount = amount),
    amount_paid INTEGER NOT NULL CHECK (amount_paid >= 0 AND amount_paid <= actual_amount),
    amount_refunded INTEGER NOT NULL,
    refund_reserved INTEGER NOT NULL,
    has_refunds BOOLEAN NOT NULL,
    currency TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    time_paid INTEGER,
    time_expire INTEGER NOT NULL,
    description TEXT,
    metadata TEXT,
    receipt_app TEXT NOT NULL,
    service_app TEXT NOT NULL,
    -- The money invariant, enforced by the database whatever the code does:
    -- 0 <= refunded <= reserved <= paid.
    CHECK (amount_refunded >= 0 AND amount_refunded <= refund_reserved AND refund_reserved <= amount_paid),
    UNIQUE (app_id, livemode, merchant_order_no)
);
CREATE INDEX orders_scope_seq ON orders (app_id, livemode, seq);
CREATE INDEX orders_scope_uid ON orders (app_id, livemode, uid, seq);

CREATE TABLE charges (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'closed')),
    channel TEXT NOT NULL,
    channel_order_no TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL CHECK (amount > 0),
    amount_refunded INTEGER NOT NULL CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    currency TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    extra TEXT NOT NULL,
    credential TEXT NOT NULL,
    time_paid INTEGER,
    time_expire INTEGER NOT NULL,
    transaction_no TEXT UNIQUE,
    failure_code TEXT,
    failure_msg TEXT,
    metadata TEXT NOT NULL,
    description TEXT
);
CREATE INDEX charges_order ON charges (order_id);
-- An order is paid by at most one charge.
CREATE UNIQUE INDEX charges_one_success ON charges (order_id) WHERE status = 'succeeded';

CREATE TABLE refunds (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders(id),
    charge_id TEXT NOT NULL REFERENCES charges(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    refund_no TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    time_succeed INTEGER,
    transaction_no TEXT,
    failure_code TEXT,
    failure_msg TEXT
);
CREATE INDEX refunds_order ON refunds (order_id, seq);
CREATE INDEX refunds_charge ON refunds (charge_id, seq);

CREATE TABLE idempotency_keys (
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    created INTEGER NOT NULL,
    status INTEGER,
    body BLOB,
    PRIMARY KEY (app_id, livemode, key)
);

-- Events are written in the same transaction as the state change that caused them, together
-- with one pending delivery per subscribed endpoint: the outbox. Nothing is sent from memory.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_scope_seq ON events (app_id, livemode, seq);

CREATE TABLE webhook_endpoints (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    all_events BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (app_id, livemode);

CREATE TABLE webhook_endpoint_events (
    endpoint_id TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, type)
);

CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A worker owns a claimed delivery until then; after a crash the lease simply runs out.
    lease_until INTEGER
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE delivery_attempts (
    seq INTEGER PRIMARY KEY,
    delivery_seq INTEGER NOT NULL,
    attempted_at INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    response_snippet TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_seq);
