"""The check-in app's domain signal, for the apps that build on it (webhooks, metrics)."""

from django.dispatch import Signal

# Sent after a ticket's first admission commits (a scan at the door or an offline scan uploaded),
# with ``event_id`` and ``check_in_ids``. A scan that only moves a check-in earlier sends nothing.
checked_in = Signal(use_caching=True)
