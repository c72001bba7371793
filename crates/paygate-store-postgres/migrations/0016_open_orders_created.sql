-- Issue 10: 知晓云 `status=pending` lists open orders newest first. Without an index in that order PostgreSQL
-- reads every open order through the expiry sweep's partial index and sorts them (≈ 19 ms at 8 000 open orders
-- over 10 M); this one hands it the page in order. It costs one more index entry per order create only (a paid,
-- closed or canceled order's new row version does not match the predicate). SQLite does not need it: it walks
-- `orders_scope_created` newest first and open orders are the newest ones.
-- Migrations run in one transaction, and building this index reads the whole orders table while order writes
-- wait. With a large table, build it first without blocking writes (the migration then finds it):
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_created ON orders (app_id, livemode, created, seq)
--     WHERE status = 'created';
CREATE INDEX IF NOT EXISTS orders_open_created ON orders (app_id, livemode, created, seq) WHERE status = 'created';
