"""Writes: endpoints (validated, their subscriptions memo kept current), deliveries and their attempts."""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import OrganizerProfile
from eventflow.signals import send_now

from . import selectors, sending, signing, subscriptions
from .errors import EndpointDisabled, TooManyEndpoints, WebhookUrlNotAllowed
from .models import PING, EventType, WebhookDelivery, WebhookEndpoint
from .signals import delivery_attempted, delivery_failed, endpoint_disabled

logger = logging.getLogger(__name__)


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


# --- Endpoints ---------------------------------------------------------------------------------


def url_check(url: str) -> str:
    """Refuse what can never be a safe target, before anything is stored (``webhook_url_not_allowed``).

    A host name is not resolved here (its answer may change): the send-time check is the one that
    protects. Here: the scheme, credentials in the URL, an ASCII host (an internationalized name in
    its punycode ``xn--`` form: the standard library would encode it with IDNA 2003, which maps
    some names to another domain, ``straße.de`` to ``strasse.de``), the port, and literal
    non-public addresses (6to4 and Teredo IPv6 included)."""
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if settings.WEBHOOKS_ALLOW_HTTP else {"https"}
    if parts.scheme not in allowed_schemes:
        raise WebhookUrlNotAllowed(
            _("Webhook URLs must use https.") if parts.scheme == "http" else _("Webhook URLs must be http(s) URLs."),
            field="url",
        )
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlNotAllowed(_("Webhook URLs may not contain a user name or password."), field="url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise WebhookUrlNotAllowed(_("Webhook URLs need a host."), field="url")
    if not host.isascii():
        raise WebhookUrlNotAllowed(
            _(
                "Webhook URL host names must be ASCII: write an internationalized domain name in its "
                "punycode form (xn--…)."
            ),
            field="url",
        )
    try:
        port = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise WebhookUrlNotAllowed(_("The URL's port is not valid."), field="url") from exc
    if port == 0:
        raise WebhookUrlNotAllowed(_("The URL's port is not valid."), field="url")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        try:
            ipaddress.ip_address(host)
            literal = True
        except ValueError:
            literal = False
        if (literal and sending.address_refused(host)) or host == "localhost" or host.endswith(".localhost"):
            raise WebhookUrlNotAllowed(_("Webhook URLs must point to a public address."), field="url")
    return url


def _events_check(events: list[str]) -> list[str]:
    # Validated by the serializer; kept unique and in the documented order.
    return [value for value in EventType.values if value in set(events)]


def endpoint_limit_check(*, organizer: OrganizerProfile) -> None:
    """``TooManyEndpoints`` if the organizer already has as many endpoints as allowed."""
    if WebhookEndpoint.objects.filter(organizer=organizer).count() >= settings.WEBHOOKS_MAX_ENDPOINTS:
        raise TooManyEndpoints()


@transaction.atomic
def endpoint_create(
    *, organizer: OrganizerProfile, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    # The organizer's row serialises two creations racing for the last allowed endpoint.
    OrganizerProfile.objects.select_for_update().filter(pk=organizer.pk).first()
    endpoint_limit_check(organizer=organizer)
    endpoint = WebhookEndpoint.objects.create(
        organizer=organizer,
        url=url_check(url),
        events=_events_check(events),
        description=description,
        secret=signing.new_secret(),
    )
    subscriptions.changed()
    return endpoint


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Edit an endpoint; ``active`` true re-enables a disabled one (its failure count starts again)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if url is not None:
        endpoint.url = url_check(url)
    if events is not None:
        endpoint.events = _events_check(events)
    if description is not None:
        endpoint.description = description
    if active is True and not endpoint.is_active:
        endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = True, None, ""
        endpoint.consecutive_failures = 0
    elif active is False and endpoint.is_active:
        endpoint.is_active, endpoint.disabled_at = False, timezone.now()
        endpoint.disabled_reason = _("Disabled by the organizer.")
    endpoint.save()
    subscriptions.changed()
    return endpoint


def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return endpoint_update(endpoint=endpoint, active=True)


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret at once (deliveries from now on are signed with it); the old one stops working."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.secret = signing.new_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()  # its deliveries go with it
    subscriptions.changed()


# --- Events and deliveries ---------------------------------------------------------------------


def _data(event_type: str, facts: dict[str, Any]) -> dict[str, Any] | None:
    if event_type.startswith("order."):
        return selectors.order_data(
            order_id=facts["order_id"], status=facts["status"], previous_status=facts.get("previous_status")
        )
    if event_type == EventType.CHECKIN_CREATED:
        return selectors.check_in_data(check_in_id=facts["check_in_id"])
    if event_type == EventType.EVENT_CANCELLED:
        return selectors.event_data(event_id=facts["event_id"])
    return None


def _queue_sends(delivery_ids: list) -> None:
    from .tasks import send_delivery

    def queue() -> None:
        for delivery_id in delivery_ids:
            send_delivery.delay(str(delivery_id))

    transaction.on_commit(queue)


@transaction.atomic
def events_emit(*, organizer_id: int, events: list[dict[str, Any]]) -> list[WebhookDelivery]:
    """Record a delivery of each event (``{id, type, created_at, facts}``) to each of the organizer's
    active endpoints subscribed to its type, and queue their sends. Running it twice for the same
    events records nothing more (one delivery per endpoint and event id)."""
    endpoints = list(WebhookEndpoint.objects.filter(organizer_id=organizer_id, is_active=True))
    created: list[WebhookDelivery] = []
    now = timezone.now()
    for event in events:
        targets = [endpoint for endpoint in endpoints if event["type"] in endpoint.events]
        if not targets:
            continue
        data = _data(event["type"], event["facts"])
        if data is None:
            continue
        payload = {"id": event["id"], "type": event["type"], "created_at": event["created_at"], "data": data}
        for endpoint in targets:
            delivery, was_created = WebhookDelivery.objects.get_or_create(
                endpoint=endpoint,
                event_id=event["id"],
                defaults={"event_type": event["type"], "payload": payload, "next_attempt_at": now},
            )
            if was_created:
                created.append(delivery)
    _queue_sends([delivery.pk for delivery in created])
    return created


@transaction.atomic
def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``ping`` event to this endpoint alone, to try a receiver out."""
    if not endpoint.is_active:
        raise EndpointDisabled()
    event_id, now = new_event_id(), timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=event_id,
        event_type=PING,
        payload={
            "id": event_id,
            "type": PING,
            "created_at": now.isoformat(),
            "data": {"endpoint": {"id": endpoint.pk, "url": endpoint.url}},
        },
        next_attempt_at=now,
    )
    _queue_sends([delivery.pk])
    return delivery


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, as it was (same event id and body), whatever became of it; its
    attempts start again from one."""
    delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    if not delivery.endpoint.is_active:
        raise EndpointDisabled()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    # A hold is kept: an attempt in flight finishes first, and the replay is sent once it is over
    # (its queued send finds the hold and beat's sweep picks it up after).
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    _queue_sends([delivery.pk])
    return delivery


def retry_delay(*, delivery_id: object, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: ``WEBHOOKS_RETRY_SCHEDULE``, ±10 % jitter.

    The jitter is drawn from the delivery's id and the attempt, so a burst of deliveries to one
    receiver that came back spreads out, and the schedule of one delivery is reproducible."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    base = schedule[min(max(attempts, 1), len(schedule)) - 1]
    return base * random.Random(f"{delivery_id}:{attempts}").uniform(0.9, 1.1)  # noqa: S311  (spread, not secrecy)


def claim_hold_seconds() -> float:
    """How long an attempt holds its delivery: longer than a request can take (the send task's
    time limits are below it, ``tasks.send_delivery``), so a duplicate task finds it held and a
    killed worker's hold runs out."""
    return settings.WEBHOOKS_TIMEOUT_SECONDS * 4 + 30


def _claim(delivery_id: object, now: datetime) -> datetime | None:
    """Hold the delivery if it is due and free; the hold's end is the claim's token (None: not claimed).

    Holds only grow (a new claim needs the old one over, and ends a full hold after it), so two
    claims never share a token."""
    from django.db.models import Q

    hold = now + timedelta(seconds=claim_hold_seconds())
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING, endpoint__is_active=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=hold)
    )
    return hold if claimed else None


def delivery_attempt(*, delivery_id: object, now: datetime | None = None) -> WebhookDelivery | None:
    """One attempt of a due pending delivery, and its outcome recorded; None if it was not due
    (sent already, a retry not due yet, being sent by another worker, its endpoint disabled), or
    if the attempt lost its claim meanwhile (its outcome is then not recorded).

    No transaction or row lock is held during the HTTP request: the delivery is claimed for longer
    than a request can take, so a duplicate task finds it held, and a killed worker's hold runs out."""
    now = now or timezone.now()
    hold = _claim(delivery_id, now)
    if hold is None:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return None  # its endpoint was removed meanwhile
    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        signing.SIGNATURE_HEADER: signing.signature(endpoint.secret, body, int(time.time())),
        signing.EVENT_HEADER: delivery.event_id,
        signing.EVENT_TYPE_HEADER: delivery.event_type,
        signing.DELIVERY_HEADER: str(delivery.pk),
    }
    started = time.monotonic()
    try:
        result = sending.post(endpoint.url, body=body, headers=headers)
    except SoftTimeLimitExceeded:
        # The task's soft limit (a host name that takes ages to resolve): a failed attempt.
        result = sending.Result(None, int((time.monotonic() - started) * 1000), "timeout: the attempt took too long")
    logger.info(
        "webhook delivery %s (%s) to endpoint %s: %s in %d ms %s",
        delivery.pk,
        delivery.event_type,
        endpoint.pk,
        result.status_code,
        result.latency_ms,
        result.error,
    )
    return _record(delivery_id=delivery.pk, hold=hold, result=result, now=now)


@transaction.atomic
def _record(*, delivery_id: object, hold: datetime, result: sending.Result, now: datetime) -> WebhookDelivery | None:
    """Record an attempt's outcome, only if the attempt still holds its claim (``hold``, its token).

    A hold that ran out may have been claimed again by another attempt: that one records its own
    outcome, and this late one records nothing (no double count, no overwrite)."""
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id, locked_until=hold).first()
    if delivery is None:
        if WebhookDelivery.objects.filter(pk=delivery_id).exists():
            logger.warning("webhook delivery %s: the attempt lost its claim; its outcome is not recorded", delivery_id)
        return None  # claimed by another attempt, or the endpoint was removed meanwhile
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=delivery.endpoint_id).first()
    if endpoint is None:
        return None  # the endpoint was removed while its delivery was in flight: nothing to record
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = result.status_code
    delivery.last_latency_ms = result.latency_ms
    delivery.last_error = result.error or ("" if result.ok else f"HTTP {result.status_code}")
    delivery.locked_until = None
    final = False
    retry_in: float | None = None
    endpoint_changed = False
    if result.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDelivery.Status.SUCCEEDED, now, None
        if endpoint.consecutive_failures:
            endpoint.consecutive_failures = 0
            endpoint_changed = True
    elif delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS or delivery.event_type == PING:
        final = True  # a ping is a one-off check: it reports, it does not retry
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
        if delivery.event_type != PING:
            endpoint.consecutive_failures += 1
            endpoint_changed = True
    else:
        retry_in = retry_delay(delivery_id=delivery.pk, attempts=delivery.attempts)
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    # The conditional write: the row lock above already keeps other claims out until the commit
    # (on a database without row locks, this condition alone does).
    recorded = WebhookDelivery.objects.filter(pk=delivery.pk, locked_until=hold).update(
        attempts=delivery.attempts,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_latency_ms=delivery.last_latency_ms,
        last_error=delivery.last_error,
        locked_until=None,
        status=delivery.status,
        delivered_at=delivery.delivered_at,
        next_attempt_at=delivery.next_attempt_at,
        updated_at=timezone.now(),
    )
    if not recorded:
        logger.warning("webhook delivery %s: the attempt lost its claim; its outcome is not recorded", delivery_id)
        return None
    if endpoint_changed:
        if final and endpoint.is_active and endpoint.consecutive_failures >= settings.WEBHOOKS_DISABLE_AFTER_FAILURES:
            _disable(endpoint, now)
        endpoint.save()

    facts = {
        "delivery_id": delivery.pk,
        "endpoint_id": endpoint.pk,
        "event_type": delivery.event_type,
        "succeeded": result.ok,
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "attempt": delivery.attempts,
    }

    def after_commit() -> None:
        send_now(delivery_attempted, WebhookDelivery, **facts)
        if not result.ok:
            send_now(delivery_failed, WebhookDelivery, error=delivery.last_error, final=final, **facts)
        if retry_in is not None and retry_in < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]:
            # Celery's countdown for waits a worker may hold; longer ones (and any lost message)
            # are picked up by beat's sweep. Eagerly run, it finds the retry not due: a no-op.
            from .tasks import send_delivery

            send_delivery.apply_async((str(delivery.pk),), countdown=retry_in)

    transaction.on_commit(after_commit)
    return delivery


def _disable(endpoint: WebhookEndpoint, now: datetime) -> None:
    endpoint.is_active, endpoint.disabled_at = False, now
    endpoint.disabled_reason = _("%(count)d deliveries in a row failed.") % {"count": endpoint.consecutive_failures}
    subscriptions.changed()
    disabled_at = now.isoformat()

    def notify() -> None:
        from .tasks import send_endpoint_disabled_notice

        send_now(endpoint_disabled, WebhookEndpoint, endpoint_id=endpoint.pk, organizer_id=endpoint.organizer_id)
        send_endpoint_disabled_notice.delay(endpoint.pk, disabled_at)

    transaction.on_commit(notify)


def endpoint_disabled_notice_send(*, endpoint_id: int, disabled_at: str) -> bool:
    """Email the organizer that an endpoint was disabled, if it still is (by that same disabling)."""
    endpoint = WebhookEndpoint.objects.select_related("organizer__user").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.is_active or endpoint.disabled_at is None:
        return False
    if endpoint.disabled_at.isoformat() != disabled_at:
        return False
    organizer = endpoint.organizer
    send_mail(
        subject=_("Webhook endpoint disabled: %(url)s") % {"url": endpoint.url},
        message=_(
            "Deliveries to your webhook endpoint %(url)s failed %(count)d times in a row, so EventFlow "
            "stopped sending to it on %(when)s.\n\nWhat went wrong last is in its deliveries "
            "(GET /api/v1/organizers/me/webhooks/%(id)d/deliveries). Once the receiver works again, "
            "enable the endpoint (PATCH /api/v1/organizers/me/webhooks/%(id)d with "
            '{"active": true}, or in the back office) and replay what it missed.'
        )
        % {"url": endpoint.url, "count": endpoint.consecutive_failures, "when": disabled_at, "id": endpoint.pk},
        from_email=None,
        recipient_list=[organizer.contact_email or organizer.user.email],
    )
    return True


def deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list:
    """Pending deliveries whose attempt is due, of active endpoints (beat's sweep queues them)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, endpoint__is_active=True, next_attempt_at__lte=now
        )
        .exclude(locked_until__gte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_forget_buyer(*, old_email: str, new_email: str) -> int:
    """A buyer's account was deleted: the deliveries that carry their name and email (``order.*``
    payloads, kept for replay and the delivery log) carry the anonymised address instead, so a
    replay never sends the old one again. Returns how many were rewritten."""
    rewritten = 0
    for delivery in WebhookDelivery.objects.filter(payload__data__order__buyer__email=old_email).only("pk", "payload"):
        delivery.payload["data"]["order"]["buyer"] = {"name": "", "email": new_email}
        delivery.save(update_fields=["payload"])
        rewritten += 1
    return rewritten
