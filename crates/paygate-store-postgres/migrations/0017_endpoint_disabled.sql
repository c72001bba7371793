-- Issue 13: a webhook endpoint can be disabled and enabled again; a disabled one gets no new deliveries (the
-- fan-out and resend skip it). The console's delivery log needs no new index: it walks each of the mode's endpoints
-- on deliveries_endpoint_seq (0015), newest first, at most a page deep.
ALTER TABLE webhook_endpoints ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
