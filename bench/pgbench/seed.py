"""Seed the pgbench stock scripts' database: the app's schema, one event, one buyer and two
ticket types of the same (huge) stock, one on a single row and one over N stock buckets.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_pgbench \
        .venv/bin/python bench/pgbench/seed.py --buckets 16

Migrates the database (created when missing), empties the orders of an earlier run and
prints the ``-D`` arguments the scripts need (bench/README.md, "Stock buckets").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buckets", type=int, default=16, help="stock buckets of the bucketed ticket type")
    parser.add_argument("--stock", type=int, default=10_000_000, help="tickets of each type (never sells out)")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database of its own (it is migrated and emptied).")
    from common import ensure_database

    ensure_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from events import stock
    from events.models import MAX_STOCK_BUCKETS, TicketType

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # the previous run's orders (the ledger is append-only in the app only)
        cursor.execute("TRUNCATE orders_inventoryentry, orders_orderitem, orders_order CASCADE")
    from common import attendees, event_on_sale

    tag = os.urandom(3).hex()
    event, single = event_on_sale(tag, "Pgbench", price_cents=2500, tickets=args.stock, max_per_order=10)
    buyer = attendees(tag, "pgbench", 1)[0]
    buckets = min(max(args.buckets, 2), MAX_STOCK_BUCKETS)
    bucketed = TicketType.objects.create(
        event=event, name="GA bucketed", price_cents=2500, capacity=args.stock, available=0, stock_buckets=buckets
    )
    stock.lay_out(bucketed.pk, [], on_sale=args.stock, buckets=buckets)
    print(
        f"-D event={event.pk} -D buyer={buyer.pk} -D single={single.pk} -D bucketed={bucketed.pk} -D buckets={buckets}"
    )


if __name__ == "__main__":
    main()
