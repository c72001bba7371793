-- The list benchmark's data on SQLite (scripts/bench, SCENARIO=lists); bench/lists_pg.sql's twin: @N@ orders of one app
-- over one year ending at @NOW@ (oldest @T0@), each a 知晓云 payment record with its charge.
-- 60 % paid (0.5 % with refunds: 3/5 refunded in full, 1/5 in part, 1/5 a failed refund), 10 %
-- canceled, the rest closed (or still open when created in the last day); 100 000 payers, each
-- both the order's `uid` (payer_K) and the record's creator (hserve user K; user 1 was
-- registered through the API before this runs); 70 % WeChat, 30 % Alipay; 3 merchandise
-- schemas, 10 000 merchandise records. Deterministic: a multiplicative hash of the row number
-- decides everything, so every run measures the same data. Rows are inserted oldest first, as
-- they arrive in life, so `seq` grows with `created`.
-- (Mind SQLite's precedence: `||` binds tighter than `*`, `/` and `%` there; parenthesize.)
-- Bulk load: a crash mid-way only means the next run generates again (no marker row yet).
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;

CREATE TEMP VIEW gen AS
SELECT i, r, c, p, created, amount, trade_no, weixin,
    '9' || printf('%018d', i) AS id,
    'm' || printf('%012d', i) AS merchant_order_no,
    CASE WHEN c < 3 THEN 'refunded' WHEN c < 600 THEN 'paid' WHEN c < 700 THEN 'canceled'
         WHEN created < @NOW@ - 86400 THEN 'closed' ELSE 'created' END AS status,
    c < 600 AS paid,
    c < 5 AS has_refunds,
    CASE WHEN c < 3 THEN amount WHEN c = 3 THEN amount / 2 ELSE 0 END AS refunded,
    CASE WHEN c < 600 THEN amount ELSE 0 END AS amount_paid,
    CASE WHEN c < 600 THEN created + 30 + r % 300 END AS time_paid
FROM (
    SELECT i, r, r % 1000 AS c,
        1 + ((i * 2246822519) % 4294967296) % 100000 AS p,
        @T0@ + i * 31536000 / @N@ AS created,
        100 + (r / 10000) % 100000 AS amount,
        'td' || printf('%030d', i) AS trade_no,
        (r / 1000) % 10 < 7 AS weixin
    FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @N@)
          SELECT i, (i * 2654435761) % 4294967296 AS r FROM s) a
) b;

INSERT INTO hserve_users (app_id, livemode, created, username, password_hash, anonymous)
WITH RECURSIVE u(k) AS (SELECT 2 UNION ALL SELECT k + 1 FROM u WHERE k < 100000)
SELECT '@APP@', FALSE, @T0@, NULL, NULL, TRUE FROM u;

INSERT INTO orders (id, app_id, livemode, created, status, uid, merchant_order_no, amount, coupon_amount,
    actual_amount, amount_paid, amount_refunded, refund_reserved, has_refunds, currency, subject, body, client_ip,
    time_paid, time_expire, description, metadata, receipt_app, service_app)
SELECT id, '@APP@', FALSE, created, status, 'payer_' || p, merchant_order_no, amount, 0, amount, amount_paid,
    refunded, refunded, has_refunds, 'cny', 'bench', 'bench', '127.0.0.1', time_paid, created + 7200, NULL, NULL,
    '@APP@', '@APP@'
FROM gen ORDER BY i;

INSERT INTO charges (id, order_id, app_id, livemode, created, status, channel, channel_order_no, amount,
    amount_refunded, currency, client_ip, subject, body, extra, credential, time_paid, time_expire, transaction_no,
    metadata, order_no)
SELECT 'ch_' || printf('%024d', i), id, '@APP@', FALSE, created + 5,
    CASE WHEN paid THEN 'succeeded' WHEN status = 'created' THEN 'pending' ELSE 'closed' END,
    CASE WHEN weixin THEN 'wx_pub' ELSE 'alipay_pc_direct' END, trade_no, amount, refunded, 'cny', '127.0.0.1',
    'bench', 'bench', '{}', '{}', time_paid, created + 7200,
    CASE WHEN paid THEN 'ct' || printf('%028d', i) END, '{}', merchant_order_no
FROM gen ORDER BY i;

INSERT INTO hserve_orders (order_id, app_id, livemode, transaction_no, trade_no, gateway_type, trade_type, created_by,
    merchandise_description, merchandise_schema_id, merchandise_record_id, merchandise_snapshot, ip_address,
    created, seq)
SELECT gen.id, '@APP@', FALSE, 'hx' || printf('%030d', i), trade_no,
    CASE WHEN weixin THEN 'weixin_tenpay' ELSE 'alipay' END,
    CASE WHEN weixin THEN 'weixin_tenpay_js' ELSE 'alipay_page' END,
    p, 'bench item', 1 + (r / 100) % 3, 'item_' || ((r / 100000) % 10000), '{}', '127.0.0.1', o.created, o.seq
FROM gen JOIN orders o ON o.id = gen.id ORDER BY i;

INSERT INTO refunds (id, order_id, charge_id, app_id, livemode, created, status, amount, refund_no, description,
    metadata, time_succeed, transaction_no, failure_code, failure_msg)
SELECT 're_' || printf('%024d', i), id, 'ch_' || printf('%024d', i), '@APP@', FALSE, time_paid + 3600,
    CASE WHEN c = 4 THEN 'failed' ELSE 'succeeded' END, CASE WHEN c = 4 THEN amount ELSE refunded END,
    'rn' || i, '', '{}', CASE WHEN c = 4 THEN NULL ELSE time_paid + 3660 END,
    CASE WHEN c = 4 THEN NULL ELSE 'rt' || i END, CASE WHEN c = 4 THEN 'bench' END,
    CASE WHEN c = 4 THEN 'bench refund failed' END
FROM gen WHERE has_refunds ORDER BY i;
COMMIT;
