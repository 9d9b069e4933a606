from django.core.management.base import BaseCommand

from orders.services import expire_due_holds


class Command(BaseCommand):
    help = "Expire reserved orders whose hold has run out and return their stock (one sweep)."

    def handle(self, *args, **options) -> None:
        expired = expire_due_holds()
        self.stdout.write(f"Expired {expired} reservation(s).")
