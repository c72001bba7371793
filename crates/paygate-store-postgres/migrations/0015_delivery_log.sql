-- Issue 13: the console's delivery log reads one endpoint's deliveries newest first from a cursor.
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, seq);
