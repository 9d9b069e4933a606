"""Reads: an organizer's endpoints and deliveries, and what a payload says about the domain."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import OrganizerProfile

from .models import WebhookDelivery, WebhookEndpoint

RECENT_DELIVERIES = 10


def endpoints_of(*, organizer: OrganizerProfile) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organizer=organizer).order_by("created_at", "pk")


def endpoint_of(*, organizer: OrganizerProfile, endpoint_id: int) -> WebhookEndpoint:
    """The organizer's endpoint; another organizer's is a 404 like one that does not exist."""
    endpoint = endpoints_of(organizer=organizer).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404
    return endpoint


def deliveries_of(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "pk")


def recent_deliveries(*, endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    return list(deliveries_of(endpoint=endpoint)[:RECENT_DELIVERIES])


def delivery_of(*, endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery:
    delivery = deliveries_of(endpoint=endpoint).filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404
    return delivery


# --- Payload data: what an organizer's endpoint is told ---------------------------------------
# Only what the organizer already sees of their own events in the back office (the buyer's name and
# email are on their order list and check-in list); never a ticket code (it admits whoever holds it).


def order_data(*, order_id: str, status: str, previous_status: str | None) -> dict[str, Any] | None:
    from orders.models import Order

    order = Order.objects.select_related("buyer").filter(pk=order_id).first()
    if order is None:
        return None
    return {
        "order": {
            "id": str(order.pk),
            # The status this event is about (the order may have moved on since).
            "status": status,
            "previous_status": previous_status,
            "event_id": order.event_id,
            "total_cents": order.total_cents,
            "currency": order.currency,
            "created_at": order.created_at.isoformat(),
            "buyer": {"name": order.buyer.name, "email": order.buyer.email},
        }
    }


def check_in_data(*, check_in_id: int) -> dict[str, Any] | None:
    from checkin.models import CheckIn

    check_in = CheckIn.objects.select_related("ticket").filter(pk=check_in_id).first()
    if check_in is None:
        return None
    return {
        "check_in": {
            "id": check_in.pk,
            "event_id": check_in.event_id,
            "ticket": {
                "id": check_in.ticket_id,
                "ticket_type_id": check_in.ticket.ticket_type_id,
                "order_id": str(check_in.ticket.order_id),
            },
            "gate": check_in.gate,
            "scanned_at": check_in.scanned_at.isoformat(),
            "source": check_in.source,
        }
    }


def event_data(*, event_id: int) -> dict[str, Any] | None:
    from events.models import Event

    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return None
    return {
        "event": {
            "id": event.pk,
            "title": event.title,
            "status": event.status,
            "starts_at": event.starts_at.isoformat(),
        }
    }
