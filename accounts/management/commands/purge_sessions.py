from django.core.management.base import BaseCommand

from accounts import services


class Command(BaseCommand):
    help = "Forget sessions (refresh-token families) whose refresh tokens have all expired. Beat runs it daily."

    def handle(self, *args, **options) -> None:
        deleted = services.sessions_purge()
        self.stdout.write(f"Purged {deleted} expired sessions.")
