import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from eventflow.api.errors import ApplicationError
from events.models import Event
from events.seats import SeatsInvalid, seats_import_csv


class Command(BaseCommand):
    help = (
        "Add an event's seats from a CSV file with the header section,row,number,ticket_type[,x,y] "
        "(ticket_type: a seated ticket type's id or name). All or nothing: any bad line is reported with "
        "its line number and no seat is created. Each seat adds one to its ticket type's capacity."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("event", type=int, help="The event's id.")
        parser.add_argument("csv", help="The CSV file (UTF-8); - reads standard input.")

    def handle(self, *args, event: int, csv: str, **options) -> None:
        found = Event.objects.alive().filter(pk=event).first()
        if found is None:
            raise CommandError(f"No event has id {event}.")
        try:
            text = sys.stdin.read() if csv == "-" else Path(csv).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {csv}: {exc}") from exc
        try:
            created = seats_import_csv(event=found, text=text)
        except SeatsInvalid as exc:
            for message in exc.messages:
                self.stderr.write(message)
            raise CommandError(f"No seats imported: {len(exc.errors)} line(s) with errors.") from exc
        except ApplicationError as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stdout.write(self.style.SUCCESS(f"Imported {len(created)} seats into event {event} ({found})."))
