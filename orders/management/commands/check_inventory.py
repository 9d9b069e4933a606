from django.core.management.base import BaseCommand, CommandError

from events.discounts import uses_report
from orders.selectors import inventory_report


class Command(BaseCommand):
    help = (
        "Prove, for every ticket type, capacity = available + held + sold from the inventory ledger, "
        "and that the ledger agrees with the orders and the tickets, and every discount code's uses with the "
        "live orders carrying it. Exits non-zero on any drift."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--event", type=int, help="Only the ticket types of this event.")

    def handle(self, *args, event: int | None = None, **options) -> None:
        report = inventory_report(event_id=event)
        drifting = [row for row in report if row["problems"]]
        for row in report:
            line = (
                f"ticket type {row['ticket_type']:>6} (event {row['event']}): capacity {row['capacity']} = "
                f"available {row['available']} + held {row['held']} + sold {row['sold']}"
            )
            if row["problems"]:
                self.stderr.write(self.style.ERROR(f"DRIFT {line}"))
                for problem in row["problems"]:
                    self.stderr.write(f"    {problem}")
            elif options["verbosity"] > 1:
                self.stdout.write(f"ok    {line}")
        codes = uses_report(event_id=event)
        for problem in codes:
            self.stderr.write(self.style.ERROR(f"DRIFT {problem}"))
        if drifting or codes:
            raise CommandError(
                f"{len(drifting)} of {len(report)} ticket types drift; {len(codes)} discount codes drift."
            )
        self.stdout.write(self.style.SUCCESS(f"Inventory consistent: {len(report)} ticket types checked."))
