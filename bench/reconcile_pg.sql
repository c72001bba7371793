-- The reconciliation benchmark's books on PostgreSQL (scripts/bench, SCENARIO=reconcile): @N@ paid orders of
-- app @APP@ (test mode), each with one succeeded WeChat charge (wx_pub_qr), paid over the Beijing day that
-- starts at unix @DAY@ (00:00 +08:00), in order. Row i matches the simulator's seeded bill row i (the script
-- seeds the same numbers): merchant no. 'rc' + 14 digits, transaction no. '4200' + 24 digits, amount
-- 100 + i % 10000 fen, paid at @DAY@ + (i - 1) * 86400 / @N@. No settlement: the fee is not compared.
-- Deterministic, so every run reconciles the same books. bench/reconcile_sqlite.sql is its twin.
SET synchronous_commit = off;
-- The rows are consistent by construction: skip the per-row foreign-key triggers (superuser only).
SET session_replication_role = replica;

CREATE TEMP VIEW gen AS
SELECT i, paid, paid - 60 AS created, 100 + i % 10000 AS amount,
    '8' || lpad(i::text, 18, '0') AS id,
    'ro' || lpad(i::text, 14, '0') AS merchant_order_no
FROM (SELECT i, @DAY@ + (i - 1) * 86400 / @N@ AS paid FROM generate_series(1::bigint, @N@) i) a;

INSERT INTO orders (id, app_id, livemode, created, status, uid, merchant_order_no, amount, coupon_amount,
    actual_amount, amount_paid, amount_refunded, refund_reserved, has_refunds, currency, subject, body, client_ip,
    time_paid, time_expire, description, metadata, receipt_app, service_app)
SELECT id, '@APP@', FALSE, created, 'paid', NULL, merchant_order_no, amount, 0, amount, amount, 0, 0, FALSE,
    'cny', 'bench', 'bench', '127.0.0.1', paid, created + 7200, NULL, NULL, '@APP@', '@APP@'
FROM gen ORDER BY i;

INSERT INTO charges (id, order_id, app_id, livemode, created, status, channel, channel_order_no, amount,
    amount_refunded, currency, client_ip, subject, body, extra, credential, time_paid, time_expire, transaction_no,
    metadata, order_no, settlement)
SELECT 'ch_' || lpad(i::text, 24, '0'), id, '@APP@', FALSE, created + 5, 'succeeded', 'wx_pub_qr',
    'rc' || lpad(i::text, 14, '0'), amount, 0, 'cny', '127.0.0.1', 'bench', 'bench', '{}', '{}', paid,
    created + 7200, '4200' || lpad(i::text, 24, '0'), '{}', merchant_order_no, NULL
FROM gen ORDER BY i;

-- Statistics, as a database that grew to this size would have them.
ANALYZE orders;
ANALYZE charges;
