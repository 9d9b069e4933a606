"""Outbound webhooks: an organizer's endpoints and each delivery of an event to one of them."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import OrganizerProfile


class EventType(models.TextChoices):
    ORDER_PLACED = "order.placed", _("An order was placed (reserved, or paid at once when free)")
    ORDER_PAID = "order.paid", _("An order was paid")
    ORDER_CANCELLED = "order.cancelled", _("An order was cancelled")
    ORDER_REFUNDED = "order.refunded", _("An order was refunded")
    CHECKIN_CREATED = "checkin.created", _("A ticket was checked in")
    EVENT_CANCELLED = "event.cancelled", _("An event was cancelled")


# Sent on request (POST .../ping) whatever the endpoint subscribes to; not subscribable.
PING = "ping"
URL_MAX_LENGTH = 500


class WebhookEndpoint(models.Model):
    organizer = models.ForeignKey(OrganizerProfile, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=URL_MAX_LENGTH)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    # A list of EventType values (JSON, not an array column: the embedded default runs on SQLite).
    events = models.JSONField(_("events"), default=list)
    # Kept in clear: signing needs it. Shown to the organizer on creation, rotation and the endpoint's own
    # page (whoever holds their token could rotate it anyway), never in lists or the admin.
    secret = models.CharField(_("signing secret"), max_length=80, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("disabled because"), max_length=200, blank=True, default="")
    # Deliveries in a row that ended failed (retries exhausted); a success resets it.
    consecutive_failures = models.PositiveIntegerField(_("failed deliveries in a row"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret_hint(self) -> str:
        return f"…{self.secret[-4:]}" if self.secret else ""


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (first attempt or a retry due)")
        SUCCEEDED = "succeeded", _("Succeeded (2xx)")
        FAILED = "failed", _("Failed (every attempt)")

    # Also the ``EventFlow-Delivery`` header: unique per endpoint and event.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The event's id (``evt_…``, the payload's ``id`` and ``EventFlow-Event``): the same for every
    # endpoint told of one event, so receivers can deduplicate.
    event_id = models.CharField(_("event id"), max_length=40)
    event_type = models.CharField(_("event type"), max_length=32)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # A sender holds the delivery until then (longer than a request can take), so a duplicate
    # task or the retry sweep never sends it twice at once; a killed sender's hold runs out.
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("last response status"), null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(_("last latency (ms)"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_recent"),
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"
