-- buckets.sql with the claim as two statements, SELECT ... SKIP LOCKED then UPDATE: one more
-- client round trip while the bucket is held. Kept to show why events.stock claims in one.
\set start random(0, :buckets - 1)
BEGIN;
SET LOCAL lock_timeout = '3000ms';
INSERT INTO orders_order (id, buyer_id, event_id, status, total_cents, fee_cents, currency, expires_at, created_at, updated_at)
  VALUES (gen_random_uuid(), :buyer, :event, 'reserved', 2500, 0, 'EUR', now() + interval '10 minutes', now(), now())
  RETURNING id AS order_id \gset
INSERT INTO orders_orderitem (order_id, ticket_type_id, quantity, unit_price_cents) VALUES (':order_id', :bucketed, 1, 2500);
INSERT INTO orders_inventoryentry (ticket_type_id, order_id, kind, quantity, created_at) VALUES (:bucketed, ':order_id', 'hold', 1, now());
SELECT id AS bucket_id FROM events_stockbucket
  WHERE ticket_type_id = :bucketed AND available >= 1
  ORDER BY number < :start, number
  LIMIT 1
  FOR NO KEY UPDATE SKIP LOCKED \gset
UPDATE events_stockbucket SET available = available - 1 WHERE id = :bucket_id RETURNING available;
COMMIT;
