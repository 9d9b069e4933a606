"""``Idempotency-Key``: a retried request gets the first response, never a second effect.

The key is claimed (committed at once) before the work starts, so a concurrent
duplicate sees it and gets 409 ``idempotency_in_progress``. The handler gets a
``remember(status, body)`` to call inside its own transaction, so the stored
response commits with the work or not at all: a request that died half-way
leaves only its claim, which a retry may take over once it is older than
``IDEMPOTENCY_STALE_SECONDS``. Responses below 500 are stored and replayed (a
409 ``sold_out`` stays a 409); a 5xx releases the key so the client can retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from eventflow.api.errors import ApplicationError, problem_response

from .errors import IdempotencyInProgress, IdempotencyKeyReused
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _claim(*, user, scope: str, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Insert the in-progress record (True), or return the existing one for the caller to judge (False)."""
    now = timezone.now()
    expires_at = now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=user, scope=scope, key=key, fingerprint=fingerprint, created_at=now, expires_at=expires_at
                )
                return record, True
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
            if record is None:
                continue  # deleted in between (expired or released): try again
            if record.expires_at <= now:
                IdempotencyRecord.objects.filter(pk=record.pk, expires_at__lte=now).delete()
                continue
            return record, False
    raise IdempotencyInProgress()


Remember = Callable[[int, Any], None]


def idempotent(request: Request, *, scope: str, handler: Callable[[Remember | None], Response]) -> Response:
    """Run ``handler`` at most once per (user, scope, Idempotency-Key) and replay its response.

    ``handler(remember)`` should call ``remember(status, body)`` inside the
    transaction that does its work; ``remember`` is None without a key.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return handler(None)
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise ApplicationError(_("Idempotency-Key must be 1 to 255 printable characters."), field=HEADER)

    fingerprint = _fingerprint(request)
    record, claimed = _claim(user=request.user, scope=scope, key=key, fingerprint=fingerprint)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.state == IdempotencyRecord.State.COMPLETED:
        response = Response(record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"})
        if record.response_status >= 400:
            response.content_type = "application/problem+json"
        return response
    if not claimed:
        if record.created_at > timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS):
            raise IdempotencyInProgress()
        # An abandoned claim (its request died before committing anything): take it over, once.
        taken = IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).update(
            created_at=timezone.now()
        )
        if not taken:
            raise IdempotencyInProgress()

    remembered = []

    def remember(status: int, body: Any) -> None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            state=IdempotencyRecord.State.COMPLETED, response_status=status, response_body=body
        )
        remembered.append(status)

    try:
        try:
            response = handler(remember)
        except APIException as exc:
            if exc.status_code >= 500:
                raise
            response = problem_response(exc, request)
            remember(response.status_code, response.data)  # nothing was done: store the refusal
            return response
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS).delete()
        raise
    if not remembered:
        remember(response.status_code, response.data)
    return response
