-- The console overview's daily rollup (paygate-store overview.rs): settled money per app, mode, Beijing day
-- (its start, unix), channel family and face, and orders created / paid per day. Written by the worker once a
-- day has ended, never on the payment path; a day in console_rollup_days is rolled up for every app.
CREATE TABLE console_daily (
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    day BIGINT NOT NULL,
    channel TEXT NOT NULL,
    face TEXT NOT NULL,
    paid_count BIGINT NOT NULL,
    paid_amount BIGINT NOT NULL,
    refund_count BIGINT NOT NULL,
    refund_amount BIGINT NOT NULL,
    PRIMARY KEY (app_id, livemode, day, channel, face)
);
CREATE TABLE console_daily_orders (
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    day BIGINT NOT NULL,
    orders BIGINT NOT NULL,
    paid_orders BIGINT NOT NULL,
    PRIMARY KEY (app_id, livemode, day)
);
CREATE TABLE console_rollup_days (day BIGINT PRIMARY KEY);
