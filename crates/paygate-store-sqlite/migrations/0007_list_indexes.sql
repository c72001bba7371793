-- Issue 10: every list over millions of orders is answered by an index that seeks to its first row
-- and reads only the rows it returns. Lists are newest first by (created, seq) — seed 004 orders
-- by creation time; seq breaks ties and is what a cursor compares after created — so a created
-- window, a cursor and a page all start with one seek in the same index.
--
-- A list first finds its page's seqs from an index alone and then reads those rows: every
-- filter's column is in the index (after the ordering columns), so rows a filter refuses or an
-- offset skips are never read from the table (a covering index).
--
-- The whole app (and created windows, and filters most orders pass: paid, not refunded, not
-- canceled): replaces orders_scope_seq.
CREATE INDEX orders_scope_created ON orders (app_id, livemode, created, seq, status, has_refunds);
DROP INDEX orders_scope_seq;
-- One payer's orders (`uid`, 100 or so among millions), newest first: replaces (…, uid, seq).
DROP INDEX orders_scope_uid;
CREATE INDEX orders_scope_uid ON orders (app_id, livemode, uid, created, seq, status, has_refunds);
-- The rare filters, each a partial index holding only its rows: orders with a refund asked
-- (`refunded=true`, 知晓云 `refund_status`) and canceled orders. Neither is touched by an order
-- create (a new order is neither), only by the refund or cancel that puts the row in.
CREATE INDEX orders_refunds_created ON orders (app_id, livemode, created, seq, status, has_refunds) WHERE has_refunds;
CREATE INDEX orders_canceled_created ON orders (app_id, livemode, created, seq, status, has_refunds)
    WHERE status = 'canceled';
-- 知晓云 `paid_at` windows and `order_by=-paid_at` among them, read backwards for the latest payment
-- first. Only paid orders: a create does not write it.
CREATE INDEX orders_scope_paid ON orders (app_id, livemode, time_paid, seq) WHERE time_paid IS NOT NULL;
-- The worker's sweeps read every order of every app: expiry (status = 'created' AND
-- time_expire <= now) and late payments to refund (status = 'paid_after_close'). Both kinds are few.
CREATE INDEX orders_open_expiry ON orders (time_expire) WHERE status = 'created';
CREATE INDEX orders_paid_after_close ON orders (app_id) WHERE status = 'paid_after_close';
-- 知晓云 lists pinned to a user's records (their own, or `created_by`) or a merchandise's: the
-- records' orders are found from the index alone (trailing order_id), then sorted.
DROP INDEX hserve_orders_user;
CREATE INDEX hserve_orders_user ON hserve_orders (app_id, livemode, created_by, order_id);
CREATE INDEX hserve_orders_merchandise ON hserve_orders (app_id, livemode, merchandise_record_id, order_id);
