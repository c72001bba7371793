-- Issue 10: a 知晓云 list pinned to one creator's or one merchandise's records (hundreds to
-- thousands among millions) reads them newest first straight from an index of `hserve_orders`
-- and stops at its page, instead of reading every such record's order to sort them. So each
-- record keeps its order's list position, `(created, seq)` — both fixed when the order is made,
-- written with the record in the same transaction and never updated.
-- On a large installation this rewrites every record (≈ 20 min for 10 M on two busy cores, the
-- table locked meanwhile) and leaves the old row versions to autovacuum: run
-- `VACUUM (ANALYZE) hserve_orders` after upgrading, or index-only scans read the heap until it has.
ALTER TABLE hserve_orders ADD COLUMN created BIGINT, ADD COLUMN seq BIGINT;
UPDATE hserve_orders h SET created = o.created, seq = o.seq FROM orders o WHERE o.id = h.order_id;
ALTER TABLE hserve_orders ALTER COLUMN created SET NOT NULL, ALTER COLUMN seq SET NOT NULL;
DROP INDEX hserve_orders_user;
CREATE INDEX hserve_orders_user ON hserve_orders (app_id, livemode, created_by, created, seq) INCLUDE (order_id);
DROP INDEX hserve_orders_merchandise;
CREATE INDEX hserve_orders_merchandise ON hserve_orders (app_id, livemode, merchandise_record_id, created, seq)
    INCLUDE (order_id);
-- Lists over the records' own columns (none at all: the first page, deep offsets, the bounded
-- total_count; gateway types) walk the records newest first and read only their page's orders.
CREATE INDEX hserve_orders_scope_created ON hserve_orders (app_id, livemode, created, seq);
