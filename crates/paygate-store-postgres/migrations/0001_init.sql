CREATE TABLE settings (name TEXT PRIMARY KEY, value BYTEA NOT NULL);

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created BIGINT NOT NULL,
    public_key_pem TEXT
);

CREATE TABLE api_keys (
    key_hash BYTEA PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    hint TEXT NOT NULL
);

CREATE TABLE orders (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'paid', 'canceled', 'refunded')),
    uid TEXT,
    merchant_order_no TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    coupon_amount BIGINT NOT NULL CHECK (coupon_amount >= 0),
    actual_amount BIGINT NOT NULL CHECK (actual_amount > 0 AND actual_amount + coupon_amount = amount),
    amount_paid BIGINT NOT NULL CHECK (amount_paid >= 0 AND amount_paid <= actual_amount),
    amount_refunded BIGINT NOT NULL,
    refund_reserved BIGINT NOT NULL,
    has_refunds BOOLEAN NOT NULL,
    currency TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    time_paid BIGINT,
    time_expire BIGINT NOT NULL,
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
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'closed')),
    channel TEXT NOT NULL,
    channel_order_no TEXT NOT NULL UNIQUE,
    amount BIGINT NOT NULL CHECK (amount > 0),
    amount_refunded BIGINT NOT NULL CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    currency TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    extra TEXT NOT NULL,
    credential TEXT NOT NULL,
    time_paid BIGINT,
    time_expire BIGINT NOT NULL,
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
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders(id),
    charge_id TEXT NOT NULL REFERENCES charges(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    refund_no TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    time_succeed BIGINT,
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
    fingerprint BYTEA NOT NULL,
    created BIGINT NOT NULL,
    status BIGINT,
    body BYTEA,
    PRIMARY KEY (app_id, livemode, key)
);
