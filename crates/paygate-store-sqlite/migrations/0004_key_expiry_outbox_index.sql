-- Issue 9: API keys can be rolled; a rolled key keeps working until expires_at (unix seconds),
-- NULL = no expiry.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
-- The outbox figures for /metrics (pending count, oldest pending) read only pending rows.
CREATE INDEX deliveries_pending_created ON deliveries (created) WHERE status = 'pending';
