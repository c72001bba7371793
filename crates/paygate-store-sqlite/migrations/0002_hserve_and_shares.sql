-- Issue 4: the 知晓云 (hserve) face and the profit-sharing core.

-- Profit sharing on the order itself, so one conditional UPDATE decides a share or a refund:
-- share_reserved = pending + succeeded shares not yet returned; a refund needs it to be zero.
ALTER TABLE orders ADD COLUMN profit_sharing BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE orders ADD COLUMN share_reserved INTEGER NOT NULL DEFAULT 0
    CHECK (share_reserved >= 0 AND share_reserved <= amount_paid);
ALTER TABLE orders ADD COLUMN sharing_finished BOOLEAN NOT NULL DEFAULT FALSE;
-- The largest share of what was paid (minus refunds), in basis points; 3000 = 30 %.
ALTER TABLE apps ADD COLUMN max_share_bps INTEGER NOT NULL DEFAULT 3000 CHECK (max_share_bps BETWEEN 0 AND 10000);
-- What the channel sent when the payment succeeded (WeChat's notification for weixin orders).
ALTER TABLE charges ADD COLUMN notification TEXT;

CREATE TABLE hserve_clients (
    client_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    UNIQUE (app_id, livemode)
);
INSERT INTO hserve_clients (client_id, app_id, livemode)
    SELECT lower(hex(randomblob(10))), id, FALSE FROM apps;
INSERT INTO hserve_clients (client_id, app_id, livemode)
    SELECT lower(hex(randomblob(10))), id, TRUE FROM apps;

CREATE TABLE hserve_users (
    id INTEGER PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    username TEXT,
    password_hash TEXT,
    anonymous BOOLEAN NOT NULL,
    UNIQUE (app_id, livemode, username)
);

CREATE TABLE hserve_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES hserve_users(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    expires INTEGER NOT NULL
);

-- A payment made through the hserve face: the order and charge are the core's; this row holds
-- what 知晓云 clients filter and read.
CREATE TABLE hserve_orders (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    transaction_no TEXT NOT NULL UNIQUE,
    trade_no TEXT NOT NULL UNIQUE,
    gateway_type TEXT NOT NULL,
    trade_type TEXT NOT NULL,
    created_by INTEGER,
    merchandise_description TEXT NOT NULL,
    merchandise_schema_id INTEGER,
    merchandise_record_id TEXT,
    merchandise_snapshot TEXT NOT NULL,
    ip_address TEXT NOT NULL
);
CREATE INDEX hserve_orders_user ON hserve_orders (app_id, livemode, created_by);

CREATE TABLE profit_shares (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES orders(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('wechat_single', 'wechat_multi', 'alipay')),
    out_order_no TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    return_reserved INTEGER NOT NULL DEFAULT 0,
    amount_returned INTEGER NOT NULL DEFAULT 0,
    receivers TEXT NOT NULL,
    channel_order_no TEXT,
    failure_msg TEXT,
    CHECK (amount_returned >= 0 AND amount_returned <= return_reserved AND return_reserved <= amount),
    UNIQUE (app_id, livemode, out_order_no)
);
CREATE INDEX profit_shares_order ON profit_shares (order_id, seq);
