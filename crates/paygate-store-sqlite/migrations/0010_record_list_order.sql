-- Issue 10: a 知晓云 list pinned to one creator's or one merchandise's records (hundreds to
-- thousands among millions) reads them newest first straight from an index of `hserve_orders`
-- and stops at its page, instead of reading every such record's order to sort them. So each
-- record keeps its order's list position, `(created, seq)` — both fixed when the order is made,
-- written with the record in the same transaction and never updated. (SQLite adds a NOT NULL
-- column only with a default; every insert names both.)
ALTER TABLE hserve_orders ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hserve_orders ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE hserve_orders SET (created, seq) = (SELECT o.created, o.seq FROM orders o WHERE o.id = hserve_orders.order_id);
DROP INDEX hserve_orders_user;
CREATE INDEX hserve_orders_user ON hserve_orders (app_id, livemode, created_by, created, seq, order_id);
DROP INDEX hserve_orders_merchandise;
CREATE INDEX hserve_orders_merchandise ON hserve_orders (app_id, livemode, merchandise_record_id, created, seq,
    order_id);
-- Lists over the records' own columns (none at all: the first page, deep offsets, the bounded
-- total_count; gateway types) walk the records newest first and read only their page's orders.
CREATE INDEX hserve_orders_scope_created ON hserve_orders (app_id, livemode, created, seq);
