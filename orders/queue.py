"""The queued on-sale: purchases of a high-demand event wait in line and are placed in order.

Why. At a flash sale many more buyers than tickets arrive within seconds, all
for the same ticket-type row. Placed directly, each purchase waits on that
row's lock inside a web request: latency climbs with the crowd, lock timeouts
answer 503, and the database does the queueing, badly. For an event marked
``high_demand`` the web request does only what needs no lock (input, event,
ticket types, sales window, per-order limits, and the sold-out shortcut: an
unlocked read, so a sold-out sale still answers 409 at once), puts the
purchase in line and answers 202 with a place and a status URL. Workers then
place the queued purchases in order with the same all-or-nothing
``services.order_place``, at the pace the database sustains, and the buyer
polls ``GET /orders/queue/{id}``. Every request is answered; none waits on a
locked row.

The line is a table (``PurchaseRequest``), not a Redis list: a request
answered 202 is committed in PostgreSQL like an order, survives a dead worker
or a Redis outage, and its outcome commits in the same transaction as its order.

Places. ``PurchaseQueue.last_seq`` hands out per-event numbers with one
UPSERT ... RETURNING in its own transaction, so that row is locked for one
statement, never across a purchase. Workers serve in ``seq`` order. A
request's ``position`` is its ``seq`` minus the head of the line (the lowest
queued ``seq``: one probe of the partial index ``purchase_request_queue``), the
number of requests ahead. It is exact but for the few requests a worker is
placing at that moment and numbers of enqueues that rolled back; counting the
requests ahead instead would cost a scan of the line on every poll.

Draining (``drain``). A worker takes the head of the line in batches of
``ORDER_QUEUE_BATCH_SIZE`` with ``SELECT ... FOR UPDATE SKIP LOCKED``, so
several workers drain one event at once without ever taking the same request.
Each request is placed in a savepoint of the batch's transaction (a refusal
undoes only its own work and records its problem code: ``sold_out``,
``limit_exceeded``, ``sales_closed`` ...), and the outcomes are written in one
UPDATE that commits with the orders. A worker that dies mid-batch rolls all of
it back, orders included: the requests are queued again, nothing is placed
twice. One commit per batch also spares the hot row a commit per purchase.
Once a ticket type is found sold out (no due holds left to expire), the rest of
the batch asking for more than is left is refused without another purchase
attempt; once every ticket type of the event is sold out, the whole remaining
line is refused ``sold_out`` in a few UPDATEs.

Who drains. Enqueueing kicks a drain task on commit, unless a drainer already
holds the event's lease (a cache key, ``cache.add``: one Redis round trip). A
drainer runs for ``ORDER_QUEUE_DRAIN_SECONDS``, brings in a second drainer
while the line is longer than a batch (up to ``ORDER_QUEUE_DRAINERS``), then
hands over to a fresh task if work is left. Beat's ``sweep`` (every
``ORDER_QUEUE_SWEEP_SECONDS``; the in-process sweeper without a broker) kicks
every event with queued requests, so a lost kick or a dead drainer strands
nothing for longer than the lease, and answers ``expired`` to requests that
waited more than ``ORDER_QUEUE_MAX_WAIT_MINUTES``. With eager tasks (tests, the
embedded default) the drain runs in the enqueueing request right after its
commit: the 202 says what was true when it was written (``queued``), and the
status URL already shows the outcome.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Min, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from eventflow.api.errors import ApplicationError
from events.models import Event, TicketType, in_stock_q
from observability import metrics

from . import selectors, services
from .errors import AlreadyQueued, Busy
from .models import PurchaseQueue, PurchaseRequest

logger = logging.getLogger(__name__)

QUEUED = PurchaseRequest.Status.QUEUED

# One statement that creates the event's line on its first request and hands out the next place.
# The ORM has no UPDATE ... RETURNING; reading the counter back in a second statement would keep
# the row locked for a round trip per enqueue. Works on PostgreSQL and SQLite (3.35+).
_NEXT_SEQ = """
    INSERT INTO "orders_purchasequeue" ("event_id", "last_seq") VALUES (%s, 1)
    ON CONFLICT ("event_id") DO UPDATE SET "last_seq" = "orders_purchasequeue"."last_seq" + 1
    RETURNING "last_seq"
"""
if PurchaseQueue._meta.db_table != "orders_purchasequeue":
    raise RuntimeError("orders/queue.py names a table the model no longer uses")


# --- Reads ------------------------------------------------------------------------------------


PURCHASE_REQUEST_FIELDS = (
    "id",
    "buyer_id",
    "event_id",
    "seq",
    "lines",
    "discount_code",
    "status",
    "order_id",
    "error_code",
    "error_detail",
    "error_extra",
    "created_at",
    "processed_at",
)


def purchase_request_of(*, buyer: User, request_id: Any) -> PurchaseRequest:
    """The buyer's request, with its order (as ``GET /orders/{id}`` shows it) once placed;
    anybody else's is a 404, never a 403."""
    found = PurchaseRequest.objects.filter(buyer=buyer, pk=request_id).only(*PURCHASE_REQUEST_FIELDS).first()
    if found is None:
        raise Http404
    found.placed_order = selectors.order_of(buyer=buyer, order_id=found.order_id) if found.order_id else None
    return found


def position_of(purchase_request: PurchaseRequest) -> int | None:
    """How many requests of the event are ahead of this one; None once it is answered."""
    if purchase_request.status != QUEUED:
        return None
    head = _line(purchase_request.event_id).aggregate(head=Min("seq"))["head"]
    return max(0, purchase_request.seq - (head if head is not None else purchase_request.seq))


def poll_after_seconds(position: int | None) -> int:
    """What to send as ``Retry-After`` to a buyer in line: soon near the head, rarely far back."""
    base = settings.ORDER_QUEUE_POLL_SECONDS
    if not position:
        return base
    return int(min(30, max(base, math.ceil(position / max(1, settings.ORDER_QUEUE_RATE_PER_SECOND)))))


def _line(event_id: int) -> QuerySet[PurchaseRequest]:
    return PurchaseRequest.objects.filter(event_id=event_id, status=QUEUED)


# --- Joining the line -------------------------------------------------------------------------


def _lines_json(lines: Sequence[services.Line]) -> list[dict[str, int]]:
    return [{"ticket_type": line.ticket_type_id, "quantity": line.quantity} for line in lines]


def _next_seq(event_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQ, [event_id])
        return cursor.fetchone()[0]


def _queued_of(buyer: User, event: Event) -> PurchaseRequest | None:
    return (
        PurchaseRequest.objects.filter(buyer=buyer, event=event, status=QUEUED).only(*PURCHASE_REQUEST_FIELDS).first()
    )


InTransaction = Callable[[PurchaseRequest, int], None]


def _answer_existing(
    existing: PurchaseRequest,
    lines: list[dict[str, int]],
    in_transaction: InTransaction | None,
    discount_code: str = "",
):
    """The buyer is in line already: the same purchase is the same request (a retry without an
    Idempotency-Key, a second click); a different one must wait for the first's outcome."""

    def by_type(line: dict[str, int]) -> int:
        return line["ticket_type"]

    same_code = existing.discount_code.lower() == discount_code.lower()
    if sorted(existing.lines, key=by_type) != sorted(lines, key=by_type) or not same_code:
        raise AlreadyQueued(extra={"purchase_request": str(existing.pk)})
    position = position_of(existing) or 0
    if in_transaction is not None:
        with transaction.atomic():
            in_transaction(existing, position)
    return existing, position


def purchase_request_enqueue(
    *,
    buyer: User,
    event: Event,
    lines: Sequence[services.Line],
    types: dict[int, TicketType],
    now: datetime,
    in_transaction: InTransaction | None = None,
    discount_code: str | None = None,
) -> tuple[PurchaseRequest, int]:
    """Put a validated purchase of a high-demand event in line; returns it and its position.

    Called by ``services.order_place`` (its ``queue`` hook) once the request is
    validated. 409 ``sold_out`` without queueing when the stock is known to be
    short; a buyer already in line for this event gets that request back when
    asking for the same tickets, else 409 ``already_queued``.
    ``in_transaction(request, position)`` runs in the transaction that writes the
    request (an idempotency record's 202 commits with it). A drainer is kicked on commit.
    """
    # 409 at once when the stock is known short; with due holds the request is queued and the
    # worker expires them under the lock, so no web request waits on the stock row.
    services.refuse_if_sold_out(
        event_id=event.pk, wanted={line.ticket_type_id: line.quantity for line in lines}, types=types, now=now
    )
    wanted = _lines_json(lines)
    code = discount_code or ""  # checked already; its use is claimed when the order is placed
    existing = _queued_of(buyer, event)
    if existing is not None:
        return _answer_existing(existing, wanted, in_transaction, code)
    seq = _next_seq(event.pk)  # its own short transaction: the counter row is never held longer
    with transaction.atomic():
        try:
            with transaction.atomic():
                purchase_request = PurchaseRequest.objects.create(
                    buyer=buyer, event=event, seq=seq, lines=wanted, discount_code=code, status=QUEUED, created_at=now
                )
        except IntegrityError:
            purchase_request = None  # the same buyer's concurrent request got in first
        if purchase_request is not None:
            position = position_of(purchase_request)
            if in_transaction is not None:
                in_transaction(purchase_request, position)
            event_id = event.pk
            transaction.on_commit(lambda: kick(event_id), robust=True)
    if purchase_request is None:
        existing = _queued_of(buyer, event)
        if existing is None:
            raise AlreadyQueued()  # answered already, in between: the buyer may ask again
        return _answer_existing(existing, wanted, in_transaction, code)
    return purchase_request, position


# --- Draining the line ------------------------------------------------------------------------


class _Known:
    """Stock found short in this batch (no due hold left): later requests wanting more are refused
    with the same problem, without another purchase attempt."""

    def __init__(self) -> None:
        self.left: dict[int, tuple[int, ApplicationError]] = {}
        self.sold_out = False

    def learn(self, exc: ApplicationError) -> None:
        ticket_type, left = exc.extra.get("ticket_type"), exc.extra.get("available")
        if exc.code == "sold_out" and ticket_type is not None and left is not None:
            self.left[ticket_type] = (left, exc)
            self.sold_out = self.sold_out or left == 0

    def refusal(self, lines: Sequence[services.Line]) -> ApplicationError | None:
        for line in lines:
            known = self.left.get(line.ticket_type_id)
            if known is not None and known[0] < line.quantity:
                return known[1]
        return None


def _refuse(purchase_request: PurchaseRequest, exc: ApplicationError, now: datetime) -> None:
    extra = dict(exc.extra)
    if exc.field:
        extra["errors"] = {exc.field: [str(exc.detail)]}
    purchase_request.status = PurchaseRequest.Status.REFUSED
    purchase_request.error_code = exc.code
    purchase_request.error_detail = str(exc.detail)
    purchase_request.error_extra = extra or None
    purchase_request.processed_at = now


class _StopBatch(Exception):
    """The stock lock could not be had in time: leave the rest queued and come back later."""


def _serve(purchase_request: PurchaseRequest, known: _Known) -> None:
    """Place one queued request (the same purchase as ``POST /orders``), or record why not."""
    now = timezone.now()
    if purchase_request.created_at <= now - timedelta(minutes=settings.ORDER_QUEUE_MAX_WAIT_MINUTES):
        purchase_request.status = PurchaseRequest.Status.EXPIRED
        purchase_request.error_code = "queue_expired"
        purchase_request.error_detail = _("This purchase waited in line too long and was not placed. Try again.")
        purchase_request.processed_at = now
        return
    lines = [services.Line(line["ticket_type"], line["quantity"]) for line in purchase_request.lines]
    refusal = known.refusal(lines)
    if refusal is not None:
        _refuse(purchase_request, refusal, now)
        return
    try:
        with transaction.atomic():  # a savepoint: a refusal or failure undoes this request only
            order = services.order_place(
                buyer=purchase_request.buyer,
                event_id=purchase_request.event_id,
                lines=lines,
                discount_code=purchase_request.discount_code or None,
            )
    except ApplicationError as exc:
        if exc.status_code >= 500:  # busy: the stock lock was not had in time
            raise _StopBatch() from exc
        _refuse(purchase_request, exc, now)
        known.learn(exc)
        return
    except OperationalError:
        raise  # the connection or the transaction is gone: the whole batch rolls back and is retried
    except Exception:  # a bug, or a value the database refused: answered, never retried forever
        logger.exception("Queued purchase %s failed", purchase_request.pk)
        failed = ApplicationError(_("This purchase could not be placed. Try again."), code="purchase_failed")
        _refuse(purchase_request, failed, now)
        return
    purchase_request.status = PurchaseRequest.Status.PLACED
    purchase_request.order = order
    purchase_request.processed_at = timezone.now()


@dataclass(frozen=True)
class Batch:
    answered: int
    more: bool  # the line may hold more
    busy: bool  # stopped early: the stock lock was not had in time
    sold_out: bool  # a ticket type was found sold out


def drain_batch(*, event_id: int, batch_size: int | None = None) -> Batch:
    """Serve the next batch of the event's line, in order, in one transaction."""
    batch_size = batch_size or settings.ORDER_QUEUE_BATCH_SIZE
    known = _Known()
    busy = False
    with transaction.atomic():
        batch = list(
            _line(event_id)
            .select_related("buyer")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("seq")[:batch_size]
        )
        served = []
        for purchase_request in batch:
            try:
                _serve(purchase_request, known)
            except _StopBatch:
                busy = True
                break
            served.append(purchase_request)
        if served:
            PurchaseRequest.objects.bulk_update(
                served, ["status", "order", "error_code", "error_detail", "error_extra", "processed_at"]
            )
            refused = sum(1 for request in served if request.error_code == "sold_out")
            if refused:
                transaction.on_commit(lambda: metrics.sold_out_queued(refused))
    if busy:
        logger.warning("Queue of event %s: stock lock busy, %d answered before stopping", event_id, len(served))
    return Batch(len(served), busy or len(batch) == batch_size, busy, known.sold_out)


def refuse_rest_if_sold_out(*, event_id: int, now: datetime | None = None, chunk: int = 1000) -> int:
    """Every ticket type of the event is sold out and no hold is due: answer the whole line
    ``sold_out`` at once, in a few UPDATEs (requests a worker holds right now are its to answer)."""
    now = now or timezone.now()
    if TicketType.objects.filter(in_stock_q(), event_id=event_id, seated=False).exists():  # pool or buckets
        return 0
    if services._due_holds_exist(event_id, now):
        return 0
    refused = 0
    while True:
        with transaction.atomic():
            ids = list(
                _line(event_id).select_for_update(skip_locked=True).order_by("seq").values_list("pk", flat=True)[:chunk]
            )
            PurchaseRequest.objects.filter(pk__in=ids).update(
                status=PurchaseRequest.Status.REFUSED,
                error_code="sold_out",
                error_detail=_("Every ticket of this event is sold out."),
                error_extra={"available": 0},
                processed_at=now,
            )
            transaction.on_commit(partial(metrics.sold_out_queued, len(ids)))
        refused += len(ids)
        if len(ids) < chunk:
            break
    if refused:
        logger.info("Queue of event %s: sold out, %d queued requests refused", event_id, refused)
    return refused


def drain(*, event_id: int, budget_seconds: float | None = None, on_backlog: Callable[[], None] | None = None) -> int:
    """Serve the event's line in order until it is empty or ``budget_seconds`` are spent.

    Returns how many requests were answered. ``on_backlog`` is called once if a
    full batch leaves more behind (to bring in another drainer). Raises
    ``Busy`` if the stock lock stayed taken (what was answered is kept)."""
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    answered = 0
    while True:
        batch = drain_batch(event_id=event_id)
        answered += batch.answered
        if batch.sold_out:
            answered += refuse_rest_if_sold_out(event_id=event_id)
        if batch.busy:
            raise Busy()
        if not batch.more:
            return answered
        if on_backlog is not None:
            on_backlog()
            on_backlog = None
        if deadline is not None and time.monotonic() >= deadline:
            return answered


# --- Who drains ---------------------------------------------------------------------------------


def _lease_key(event_id: int, slot: int) -> str:
    return f"orders:queue:drainer:{event_id}:{slot}"


def kick(event_id: int, *, slot: int = 0, countdown: int | None = None) -> bool:
    """Start a drainer for the event in ``slot`` unless one holds it; True if one was started.

    Never raises: a kick that fails (broker or Redis down) is made good by the sweep."""
    from . import tasks

    key = _lease_key(event_id, slot)
    try:
        if not cache.add(key, 1, timeout=settings.ORDER_QUEUE_LEASE_SECONDS):
            return False
    except Exception:
        logger.exception("Queue of event %s: no drainer lease (the sweep will start one)", event_id)
        return False
    try:
        tasks.drain_purchase_queue.apply_async((event_id, slot), countdown=countdown)
    except Exception:
        cache.delete(key)
        logger.exception("Queue of event %s: drainer not started (the sweep will start one)", event_id)
        return False
    return True


def drain_in_slot(*, event_id: int, slot: int, eager: bool) -> int:
    """A drainer's run (``orders.tasks.drain_purchase_queue``): drain, hand the lease back, and
    start the next run if requests are left. Eager (no worker): drain everything now."""
    busy = False

    def backlog() -> None:
        if slot + 1 < settings.ORDER_QUEUE_DRAINERS and not eager:
            kick(event_id, slot=slot + 1)

    try:
        answered = drain(
            event_id=event_id,
            budget_seconds=None if eager else settings.ORDER_QUEUE_DRAIN_SECONDS,
            on_backlog=backlog,
        )
    except Busy:
        answered, busy = 0, True
    finally:
        cache.delete(_lease_key(event_id, slot))
    # Checked after the lease is gone: a request queued meanwhile found the lease taken and
    # kicked nobody, so it is this run's to hand over.
    if not eager and _line(event_id).exists():
        kick(event_id, slot=slot, countdown=1 if busy else None)
    return answered


def expire_stale(*, now: datetime | None = None, chunk: int = 1000) -> int:
    """Answer ``expired`` to requests that waited longer than ``ORDER_QUEUE_MAX_WAIT_MINUTES``:
    after an outage of the workers, a reservation nobody is waiting for any more helps nobody."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ORDER_QUEUE_MAX_WAIT_MINUTES)
    expired = 0
    while True:
        with transaction.atomic():
            ids = list(
                PurchaseRequest.objects.filter(status=QUEUED, created_at__lte=cutoff)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:chunk]
            )
            PurchaseRequest.objects.filter(pk__in=ids).update(
                status=PurchaseRequest.Status.EXPIRED,
                error_code="queue_expired",
                error_detail=_("This purchase waited in line too long and was not placed. Try again."),
                processed_at=now,
            )
        expired += len(ids)
        if len(ids) < chunk:
            return expired


def sweep(*, now: datetime | None = None) -> int:
    """Beat's safety net: expire requests that waited too long, and make sure every event with
    queued requests has a drainer. Returns how many events have a line."""
    expire_stale(now=now)
    event_ids = list(
        PurchaseRequest.objects.filter(status=QUEUED).order_by().values_list("event_id", flat=True).distinct()
    )
    for event_id in event_ids:
        kick(event_id)
    return len(event_ids)
