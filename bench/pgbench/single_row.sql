-- The purchase transaction of one ticket on a single hot row, statement for statement as
-- orders.services._place sends it: write the order, its item and its ledger entry, then lock the
-- ticket-type row (FOR NO KEY UPDATE, ascending pk) and decrement it, and commit.
BEGIN;
SET LOCAL lock_timeout = '3000ms';
INSERT INTO orders_order (id, buyer_id, event_id, status, total_cents, fee_cents, currency, expires_at, created_at, updated_at)
  VALUES (gen_random_uuid(), :buyer, :event, 'reserved', 2500, 0, 'EUR', now() + interval '10 minutes', now(), now())
  RETURNING id AS order_id \gset
INSERT INTO orders_orderitem (order_id, ticket_type_id, quantity, unit_price_cents) VALUES (':order_id', :single, 1, 2500);
INSERT INTO orders_inventoryentry (ticket_type_id, order_id, kind, quantity, created_at) VALUES (:single, ':order_id', 'hold', 1, now());
SELECT id, available FROM events_tickettype WHERE id IN (:single) ORDER BY id FOR NO KEY UPDATE;
UPDATE events_tickettype SET available = available - 1 WHERE id = :single;
COMMIT;
