"""What the orders app does when the catalogue tells it something happened."""

from __future__ import annotations

from . import tasks


def refund_cancelled_event(sender, *, event_id: int, **kwargs) -> None:
    """Sent after the cancellation committed: the refunds run in a worker, retried and resumable."""
    tasks.refund_cancelled_event.delay(event_id)
