-- One purchase of quantity 1 on one hot ticket type, as orders.services._place sends it
-- (bench/raw_sql.py --lock for-update runs the same statements from Python).
-- Seed with `bench/raw_sql.py --seed-only`, which prints the pgbench command with the -D values:
--   tt, event: the ticket type and its event; first_buyer, buyers: a contiguous range of buyer ids;
--   buyer_limit: 1 = the per-buyer lock and count against max_per_buyer (the app's default is 10), 0 = none.
-- Differences from the app: the order's UUID comes from gen_random_uuid() (RETURNING it, no extra
-- round trip) instead of the client, and its times from now(). Use the simple query protocol
-- (pgbench's default, like Django's client-side binding): :order_id is substituted as text inside
-- its quotes. A purchase refused (sold out, over the per-buyer limit) rolls back; pgbench still counts
-- it as a transaction, so count the purchases from the database afterwards.
\set buyer random(:first_buyer, :first_buyer + :buyers - 1)
BEGIN;
SET LOCAL lock_timeout = '3000ms';
INSERT INTO "orders_order" ("id", "buyer_id", "event_id", "status", "total_cents", "fee_cents", "currency", "expires_at", "paid_at", "confirmation_sent_at", "refund_notice_sent_at", "closed_at", "created_at", "updated_at") VALUES (gen_random_uuid(), :buyer, :event, 'reserved', 4900, 0, 'EUR', now() + interval '10 minutes', NULL, NULL, NULL, NULL, now(), now()) RETURNING "id" AS order_id \gset
INSERT INTO "orders_orderitem" ("order_id", "ticket_type_id", "quantity", "unit_price_cents") VALUES (':order_id', :tt, 1, 4900) RETURNING "orders_orderitem"."id";
INSERT INTO "orders_inventoryentry" ("ticket_type_id", "order_id", "kind", "quantity", "created_at") VALUES (:tt, ':order_id', 'hold', 1, now()) RETURNING "orders_inventoryentry"."id";
\set held 0
\if :buyer_limit
SELECT 1 FROM "accounts_user" WHERE "id" = :buyer FOR NO KEY UPDATE;
SELECT COALESCE(SUM(item."quantity"), 0) AS held FROM "orders_orderitem" item JOIN "orders_order" o ON o."id" = item."order_id" WHERE o."buyer_id" = :buyer AND o."event_id" = :event AND item."ticket_type_id" = :tt AND (o."status" = 'paid' OR (o."status" = 'reserved' AND o."expires_at" > now())) \gset
\endif
\if :held <= :max_per_buyer
SELECT "events_tickettype"."available" AS available FROM "events_tickettype" WHERE "events_tickettype"."id" IN (:tt) ORDER BY "events_tickettype"."id" ASC FOR UPDATE \gset
\if :available >= 1
UPDATE "events_tickettype" SET "available" = ("events_tickettype"."available" + -1) WHERE "events_tickettype"."id" = :tt;
COMMIT;
\else
ROLLBACK;
\endif
\else
ROLLBACK;
\endif
