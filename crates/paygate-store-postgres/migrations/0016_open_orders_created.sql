-- Issue 10: 知晓云 `status=pending` lists open orders newest first. Without an index in that order PostgreSQL
-- reads every open order through the expiry sweep's partial index and sorts them (≈ 19 ms at 8 000 open orders
-- over 10 M); this one hands it the page in order. It costs one more index entry per order create only (a paid,
-- closed or canceled order's new row version does not match the predicate). SQLite does not need it: it walks
-- `orders_scope_created` newest first and open orders are the newest ones.
-- `NOT has_refunds` is always true of an open order (only a paid one takes a refund); it is in the predicate so
-- that only a query that says it too — the pending list — can use this index. Without it, the payment's
-- `UPDATE … WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'created'` was planned on it while the
-- table's statistics were young, walking every open order of the app for one row (pay completion 913/s → 114/s
-- in the benchmark).
-- Migrations run in one transaction, and building this index reads the whole orders table while order writes
-- wait (≈ 3 s at 10 M orders on the benchmark machine). With a large table, build it first without blocking
-- writes (the migration then finds it):
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_created ON orders (app_id, livemode, created, seq)
--     WHERE status = 'created' AND NOT has_refunds;
CREATE INDEX IF NOT EXISTS orders_open_created ON orders (app_id, livemode, created, seq)
    WHERE status = 'created' AND NOT has_refunds;
