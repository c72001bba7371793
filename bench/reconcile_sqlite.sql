-- The reconciliation benchmark's books on SQLite (scripts/bench, SCENARIO=reconcile); bench/reconcile_pg.sql's
-- twin: @N@ paid orders of app @APP@ (test mode), each with one succeeded WeChat charge (wx_pub_qr), paid over
-- the Beijing day that starts at unix @DAY@ (00:00 +08:00), in order. Row i matches the simulator's seeded bill
-- row i: merchant no. 'rc' + 14 digits, transaction no. '4200' + 24 digits, amount 100 + i % 10000 fen, paid at
-- @DAY@ + (i - 1) * 86400 / @N@. No settlement: the fee is not compared. Deterministic.
-- (Mind SQLite's precedence: `||` binds tighter than `*`, `/` and `%` there; parenthesize.)
PRAGMA synchronous = OFF;
BEGIN;

CREATE TEMP VIEW gen AS
SELECT i, paid, paid - 60 AS created, 100 + (i % 10000) AS amount,
    '8' || printf('%018d', i) AS id,
    'ro' || printf('%014d', i) AS merchant_order_no
FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @N@)
      SELECT i, @DAY@ + ((i - 1) * 86400 / @N@) AS paid FROM s) a;

INSERT INTO orders (id, app_id, livemode, created, status, uid, merchant_order_no, amount, coupon_amount,
    actual_amount, amount_paid, amount_refunded, refund_reserved, has_refunds, currency, subject, body, client_ip,
    time_paid, time_expire, description, metadata, receipt_app, service_app)
SELECT id, '@APP@', FALSE, created, 'paid', NULL, merchant_order_no, amount, 0, amount, amount, 0, 0, FALSE,
    'cny', 'bench', 'bench', '127.0.0.1', paid, created + 7200, NULL, NULL, '@APP@', '@APP@'
FROM gen ORDER BY i;

INSERT INTO charges (id, order_id, app_id, livemode, created, status, channel, channel_order_no, amount,
    amount_refunded, currency, client_ip, subject, body, extra, credential, time_paid, time_expire, transaction_no,
    metadata, order_no, settlement)
SELECT 'ch_' || printf('%024d', i), id, '@APP@', FALSE, created + 5, 'succeeded', 'wx_pub_qr',
    'rc' || printf('%014d', i), amount, 0, 'cny', '127.0.0.1', 'bench', 'bench', '{}', '{}', paid,
    created + 7200, '4200' || printf('%024d', i), '{}', merchant_order_no, NULL
FROM gen ORDER BY i;
COMMIT;
