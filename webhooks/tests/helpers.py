from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings

from accounts.tests.factories import UserFactory
from eventflow.tests.clients import as_user
from events.tests.factories import TicketTypeFactory
from orders.services import Line, order_place
from orders.tests.test_admin import make_organizer, on_sale
from webhooks import services

API = "/api/v1/organizers/me/webhooks"

__all__ = ["API", "as_user", "body_of", "make_organizer", "on_sale", "place", "readme_verify", "sale", "subscribe"]


def sale(organizer, price_cents: int = 2500):
    event = on_sale(organizer)
    return event, TicketTypeFactory(event=event, price_cents=price_cents, capacity=20, max_per_buyer=None)


def subscribe(organizer, url: str, events: list[str]):
    return services.endpoint_create(organizer=organizer, url=url, events=events)


def place(tier, buyer=None, quantity: int = 1):
    buyer = buyer or UserFactory()
    return order_place(buyer=buyer, event_id=tier.event_id, lines=[Line(tier.pk, quantity)])


def readme_snippet() -> str:
    """The README's verification snippet: its one ``python`` block that defines ``verify``."""
    text = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    [block] = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify(" in block]
    return block


def readme_verify():
    """The README's ``verify`` function, run from the very text the README shows."""
    namespace: dict = {}
    exec(readme_snippet(), namespace)  # noqa: S102 (our own documented snippet)
    return namespace["verify"]


def body_of(request) -> dict:
    return json.loads(request["body"])
