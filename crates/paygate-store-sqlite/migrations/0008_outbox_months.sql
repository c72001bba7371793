-- Issue 10: the outbox as PostgreSQL now keeps it (migration 7 there), on plain tables: a delivery
-- and its attempts carry their event's `created` (`event_created`), which PostgreSQL partitions
-- by month; here retention deletes old events with their deliveries and attempts in batches.
ALTER TABLE deliveries ADD COLUMN event_created INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries
    SET event_created = COALESCE((SELECT created FROM events WHERE events.id = deliveries.event_id), created);
ALTER TABLE delivery_attempts ADD COLUMN event_created INTEGER NOT NULL DEFAULT 0;
UPDATE delivery_attempts SET event_created = COALESCE(
    (SELECT event_created FROM deliveries WHERE deliveries.seq = delivery_attempts.delivery_seq), attempted_at);
-- The claim walks the endpoints that have pending deliveries and, per endpoint, its due ones in
-- order; what it reads grows with the batch and those endpoints, never with the backlog.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_ready ON deliveries (endpoint_id, next_attempt_at, seq) WHERE status = 'pending';
-- The leases an endpoint has out, counted against its limit.
CREATE INDEX deliveries_leased ON deliveries (endpoint_id, lease_until)
    WHERE status = 'pending' AND lease_until IS NOT NULL;
-- Retention reads events oldest first.
CREATE INDEX events_created ON events (created);
