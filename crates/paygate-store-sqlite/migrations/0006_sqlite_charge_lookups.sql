-- SQLite plans without statistics and prefers the index with the most equality columns: with
-- charges_scope_seq (app_id, livemode, seq) in place, every scoped charge lookup (by order for
-- settlement, cancel and refunds; by id, channel order number or transaction number) walked the
-- whole app's charges through it instead of the narrow indexes, and SQLite payment completion
-- fell 3-4x. Charge lists on SQLite read newest-first by seq instead; PostgreSQL, which plans
-- from statistics, keeps its index.
DROP INDEX IF EXISTS charges_scope_seq;
