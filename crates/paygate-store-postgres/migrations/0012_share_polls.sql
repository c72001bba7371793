-- Issue 12: an Alipay royalty settlement without an answer stays pending and is asked about on the poller's
-- backoff (alipay.trade.order.settle.query), like a charge or a refund: channel_polls takes the kind 'share'.
ALTER TABLE channel_polls DROP CONSTRAINT IF EXISTS channel_polls_kind_check;
ALTER TABLE channel_polls ADD CONSTRAINT channel_polls_kind_check CHECK (kind IN ('charge', 'refund', 'share'));
