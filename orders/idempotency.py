"""``Idempotency-Key``: a retried request gets the first response, never a second effect.

Two ways to hold a key. :func:`idempotent_in_transaction`, for work that is one
database transaction (placing an order): the record that stores the response *is*
the claim, inserted in the work's own transaction, so a purchase pays no extra
transaction for its key. A concurrent duplicate waits on the unique index until the
first commits, then finds the stored response and replays it; if the first rolled
back, the duplicate does the work itself. :func:`idempotent`, for work that is not
one transaction (a call to a payment gateway between writes):

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
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
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


def _key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise ApplicationError(_("Idempotency-Key must be 1 to 255 printable characters."), field=HEADER)
    return key


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"})
    if record.response_status >= 400:
        response.content_type = "application/problem+json"
    return response


def idempotent(request: Request, *, scope: str, handler: Callable[[Remember | None], Response]) -> Response:
    """Run ``handler`` at most once per (user, scope, Idempotency-Key) and replay its response.

    ``handler(remember)`` should call ``remember(status, body)`` inside the
    transaction that does its work; ``remember`` is None without a key.
    """
    key = _key(request)
    if key is None:
        return handler(None)

    fingerprint = _fingerprint(request)
    record, claimed = _claim(user=request.user, scope=scope, key=key, fingerprint=fingerprint)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.state == IdempotencyRecord.State.COMPLETED:
        return _replay(record)
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


# --- The key claimed by the stored response, in the work's own transaction -------------------

_INSERT_COMPLETED = """
    INSERT INTO "orders_idempotencyrecord" (
        "user_id", "scope", "key", "fingerprint", "state", "response_status", "response_body",
        "created_at", "expires_at"
    ) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
"""
if IdempotencyRecord._meta.db_table != "orders_idempotencyrecord":
    raise RuntimeError("orders/idempotency.py names a table the model no longer uses")
_UNIQUE = "idempotency_key_per_user"


def _store(*, user_id: int, scope: str, key: str, fingerprint: str, status: int, body: Any) -> None:
    """Insert the completed record: the claim. Raises IntegrityError if the key is taken."""
    now = timezone.now()
    expires_at = now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    if connection.vendor != "postgresql":
        IdempotencyRecord.objects.create(
            user_id=user_id,
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state=IdempotencyRecord.State.COMPLETED,
            response_status=status,
            response_body=body,
            created_at=now,
            expires_at=expires_at,
        )
        return
    state = IdempotencyRecord.State.COMPLETED.value
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_COMPLETED,
            [user_id, scope, key, fingerprint, state, status, json.dumps(body, cls=DjangoJSONEncoder), now, expires_at],
        )


def _is_key_taken(exc: IntegrityError) -> bool:
    if connection.vendor != "postgresql":
        return "orders_idempotencyrecord" in str(exc)
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == _UNIQUE


def _answer_for_taken_key(*, user_id: int, scope: str, key: str, fingerprint: str) -> Response | None:
    """The key is taken: replay its response (or refuse a different body). None: it was freed, try again."""
    record = IdempotencyRecord.objects.filter(user_id=user_id, scope=scope, key=key).first()
    if record is None:
        return None
    if record.expires_at <= timezone.now() or (
        record.state == IdempotencyRecord.State.IN_PROGRESS
        and record.created_at <= timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
    ):
        IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.state != IdempotencyRecord.State.COMPLETED:
        raise IdempotencyInProgress()
    return _replay(record)


def idempotent_in_transaction(
    request: Request, *, scope: str, handler: Callable[[Remember | None], Response]
) -> Response:
    """Run ``handler`` at most once per (user, scope, Idempotency-Key) and replay its response.

    ``handler(remember)`` must call ``remember(status, body)`` inside the one
    transaction that does its work, before anything in it waits on a contended lock:
    that INSERT claims the key. A retry runs the handler again up to that INSERT (its
    writes roll back) and replays the stored response. A 4xx the handler raises is
    stored in a transaction of its own; a 5xx stores nothing.
    """
    key = _key(request)
    if key is None:
        return handler(None)
    user_id = request.user.pk
    fingerprint = _fingerprint(request)
    identity = {"user_id": user_id, "scope": scope, "key": key, "fingerprint": fingerprint}

    def remember(status: int, body: Any) -> None:
        _store(**identity, status=status, body=body)

    for _attempt in range(3):
        try:
            return handler(remember)
        except IntegrityError as exc:
            if not _is_key_taken(exc):
                raise
        except APIException as exc:
            if exc.status_code >= 500:
                raise
            response = problem_response(exc, request)
            try:
                with transaction.atomic():
                    remember(response.status_code, response.data)  # nothing was done: store the refusal
                return response
            except IntegrityError as taken:
                if not _is_key_taken(taken):
                    raise
        replay = _answer_for_taken_key(**identity)
        if replay is not None:
            return replay
    raise IdempotencyInProgress()
