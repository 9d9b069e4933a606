-- The same purchase on a ticket type split over :buckets stock buckets, as events.stock.take
-- claims one: a single UPDATE of a bucket with enough stock that no other transaction holds
-- (SKIP LOCKED), starting at a random bucket. The stock never runs out here, so the fallback
-- (lock the row and every bucket, take across them, rebalance) is not exercised.
\set start random(0, :buckets - 1)
BEGIN;
SET LOCAL lock_timeout = '3000ms';
INSERT INTO orders_order (id, buyer_id, event_id, status, total_cents, fee_cents, currency, expires_at, created_at, updated_at)
  VALUES (gen_random_uuid(), :buyer, :event, 'reserved', 2500, 0, 'EUR', now() + interval '10 minutes', now(), now())
  RETURNING id AS order_id \gset
INSERT INTO orders_orderitem (order_id, ticket_type_id, quantity, unit_price_cents) VALUES (':order_id', :bucketed, 1, 2500);
INSERT INTO orders_inventoryentry (ticket_type_id, order_id, kind, quantity, created_at) VALUES (:bucketed, ':order_id', 'hold', 1, now());
UPDATE events_stockbucket SET available = available - 1
  WHERE id = (
    SELECT id FROM events_stockbucket
    WHERE ticket_type_id = :bucketed AND available >= 1
    ORDER BY number < :start, number
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
  )
  RETURNING available;
COMMIT;
