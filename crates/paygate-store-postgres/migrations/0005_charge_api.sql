-- Issue 15: the Ping++ Charge API.
-- A charge shows its order's merchant number as Ping++'s `order_no`; kept on the charge so every
-- charge query (lists included) reads it without a join. Existing charges take their order's.
ALTER TABLE charges ADD COLUMN order_no TEXT NOT NULL DEFAULT '';
UPDATE charges SET order_no = (SELECT merchant_order_no FROM orders WHERE orders.id = charges.order_id);
-- 撤销: set when POST /v1/charges/{id}/reverse closed or fully refunded the charge.
ALTER TABLE charges ADD COLUMN reversed BOOLEAN NOT NULL DEFAULT FALSE;
-- GET /v1/charges: the caller's app and mode, newest first, cursor on seq.
CREATE INDEX charges_scope_seq ON charges (app_id, livemode, seq);
