from django.core.management.base import BaseCommand, CommandError

from orders.selectors import payments_report


class Command(BaseCommand):
    help = (
        "Reconcile orders with payments and refunds: every paid order has one kept payment of its total, "
        "every refunded order a refund per payment, money taken for nothing is refunded or flagged, and no "
        "refund failed or hangs. Exits non-zero on any problem."
    )

    def handle(self, *args, **options) -> None:
        problems = payments_report()
        for problem in problems:
            self.stderr.write(self.style.ERROR(problem))
        if problems:
            raise CommandError(f"{len(problems)} payment problems.")
        self.stdout.write(self.style.SUCCESS("Payments consistent: every paid and refunded order is accounted for."))
