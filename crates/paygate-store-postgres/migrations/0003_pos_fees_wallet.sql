-- Issue 5: the cashier (酷点) and SaaS WeChat-Pay query faces, fees, subsidies, discounts,
-- members and their wallet balance.

-- The signed faces' credentials: the public id a request names, the shared signing secret (a
-- signature scheme with a shared key needs the key itself), and the cashier's store token.
CREATE TABLE face_credentials (
    public_id TEXT PRIMARY KEY,
    face TEXT NOT NULL CHECK (face IN ('cashier', 'saas')),
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    secret TEXT NOT NULL,
    token TEXT,
    UNIQUE (face, app_id, livemode)
);
-- Signatures seen inside the timestamp window: a second use is a replay.
CREATE TABLE face_nonces (
    public_id TEXT NOT NULL,
    sign TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (public_id, sign)
);
CREATE INDEX face_nonces_created ON face_nonces (created);

-- Channel fee rates in basis points, per app, mode and channel family (wechat, alipay, balance, other).
CREATE TABLE fee_rates (
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    family TEXT NOT NULL,
    rate_bp BIGINT NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    PRIMARY KEY (app_id, livemode, family)
);

CREATE TABLE members (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    member_no TEXT NOT NULL,
    phone TEXT NOT NULL,
    name TEXT NOT NULL,
    -- What a cashier scans to pay from the wallet.
    pay_code TEXT NOT NULL UNIQUE,
    -- The wallet: it can never go negative, whatever the code does.
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    UNIQUE (app_id, livemode, member_no)
);

CREATE TABLE balance_transactions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('topup', 'payment', 'refund')),
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    reference TEXT NOT NULL
);
CREATE INDEX balance_transactions_member ON balance_transactions (member_id, seq);

-- What the channel settlement of a succeeded charge was: fee, subsidy, discounts (JSON, fen).
ALTER TABLE charges ADD COLUMN settlement TEXT;
-- The member whose wallet paid (balance payments).
ALTER TABLE charges ADD COLUMN member_id BIGINT;

-- A payment made at a cashier (付款码) or queried by the SaaS face: the order and charge are the
-- core's; this row holds the face's numbers and the per-order discount and subsidy declarations.
CREATE TABLE pos_orders (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    pay_no TEXT NOT NULL UNIQUE,
    out_trade_no TEXT NOT NULL,
    attach TEXT NOT NULL,
    discounts TEXT NOT NULL,
    pre_fee_subsidy BIGINT,
    fee_subsidy_party TEXT,
    member_id BIGINT,
    auth_code_kind TEXT NOT NULL,
    reversed BOOLEAN NOT NULL DEFAULT FALSE,
    -- WeChat goods_detail as the cashier sent it (JSON list), shown by the SaaS face.
    goods_detail TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX pos_orders_out_trade_no ON pos_orders (app_id, livemode, out_trade_no);
