"""The waiting list: sold-out ticket types hand stock that comes back to the buyers who waited.

A buyer joins the list of a ticket type only while it is sold out for a newcomer
(:func:`waitlist_join`). From then on the type's ``waitlisted`` counter (waiting
entries, kept under the ticket type's row lock) is the gate: while it is above
0 no purchase takes the type's stock (``orders.services`` refuses with 409
``sold_out`` from the validating read, and the stock statements re-check it under
their locks: ``orders/sql.py`` ``_TAKE_ONE``, the locked multi-line path and the
stock buckets of ``events/stock.py``). Only :func:`offer_released` takes stock
past the gate.

When stock comes back (a hold expires or is cancelled, an order is refunded,
the organizer raises the capacity, an entry joins while stock is free) and the
type has waiting entries, :func:`offer_released` runs in a worker on commit
(``orders.tasks.offer_waitlist``; beat's ``sweep_waitlists`` is the safety net).
Under the ticket type's row lock it walks the waiting entries first come, first
served and gives each whose quantity fits a ``reserved`` order of its own, with
its own hold (``WAITLIST_OFFER_MINUTES``), taken like any purchase's (HOLD ledger
entries, the same stock rows): the earliest entries that fit get the stock; an
entry that does not fit keeps its place. An unclaimed offer expires with the
expiry sweep like any hold; its stock goes to the next entries. Paying the offer
claims it; cancelling it declines it.

Lock order, as in ``orders.services``: an order row before ticket-type rows;
ticket-type rows before their buckets; waiting entries change only under their
ticket type's row lock, offered ones under their order's.

Buyer limits (``max_per_buyer``, the event's ``max_tickets_per_buyer``) are
checked when joining and again at offer time; an entry whose buyer would go past
them then is skipped and keeps its place (the buyer may free room and still get
the next offer, or leave).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from eventflow.api.errors import ApplicationError
from eventflow.regional import format_local_time, format_money
from eventflow.signals import send_on_commit
from events import cache as catalogue_cache
from events import stock
from events.errors import EventCancelled
from events.models import Event, TicketType

from . import sql
from .errors import AlreadyOnWaitlist, LimitExceeded, NotSoldOut, SalesClosed, SoldOut, WaitlistEntryClosed
from .models import InventoryEntry, Order, OrderItem, WaitlistEntry
from .signals import WaitlistOffer, stock_changed, waitlist_offer_made

logger = logging.getLogger(__name__)

Status = WaitlistEntry.Status


# --- The gate, as purchases meet it ------------------------------------------------------------


def gate_refusal(ticket_type: TicketType) -> SoldOut:
    """The 409 ``sold_out`` a newcomer gets while the type's waiting list has entries: tickets that
    come back belong to the list, and the buyer may join it."""
    return SoldOut(
        _("%(name)s is sold out; its waiting list is open: join it to be offered tickets that come back.")
        % {"name": ticket_type.name},
        extra={"ticket_type": ticket_type.pk, "available": 0, "waitlist_open": True},
    )


def refuse_if_gated(types: dict[int, TicketType], wanted: Iterable[int]) -> None:
    """Refuse a purchase of a ticket type whose waiting list has entries (``waitlisted`` as the
    validating read loaded it, so this costs no statement)."""
    for pk in wanted:
        if types[pk].waitlisted:
            raise gate_refusal(types[pk])


# --- Hooks: where orders.services tells the list that stock moved ------------------------------


def stock_released(*, order_ids: Sequence, to_status: str, waiting: Iterable[int], now: datetime) -> None:
    """Reserved orders gave their stock back (``services._release``, order and ticket-type rows
    locked): an offer among them lapsed (expired) or was declined (cancelled), and the stock of
    the ticket types with waiting entries (``waiting``, read under those locks) is offered to them."""
    closed = Status.LAPSED if to_status == Order.Status.EXPIRED else Status.DECLINED
    WaitlistEntry.objects.filter(order_id__in=list(order_ids), status=Status.OFFERED).update(
        status=closed, closed_at=now
    )
    offer_on_commit(waiting)


def stock_returned(*, ticket_type_ids: Iterable[int]) -> None:
    """Stock of these ticket types is back (a release, a refund, more capacity): those with waiting
    entries get :func:`offer_released` in a worker once this transaction commits."""
    ids = list(ticket_type_ids)
    if ids:
        offer_on_commit(TicketType.objects.filter(pk__in=ids, waitlisted__gt=0).values_list("pk", flat=True))


def offer_on_commit(waiting: Iterable[int]) -> None:
    """:func:`offer_released` in a worker for each of these ticket types (known to have waiting
    entries) once this transaction commits."""
    from .tasks import offer_waitlist  # tasks import this module

    for pk in waiting:
        transaction.on_commit(partial(offer_waitlist.delay, pk), robust=True)


def offer_paid(*, order: Order) -> None:
    """An order was paid (``services.mark_paid``, the order locked): if it was an offer, it is claimed.
    A lapsed offer paid late (its stock taken again) counts as claimed too."""
    WaitlistEntry.objects.filter(order_id=order.pk, status__in=[Status.OFFERED, Status.LAPSED]).update(
        status=Status.CLAIMED, closed_at=None
    )


# --- Joining and leaving -------------------------------------------------------------------------


def _lock_ticket_type(ticket_type_id: int) -> TicketType:
    return (
        TicketType.objects.select_for_update(no_key=True, of=("self",)).select_related("event").get(pk=ticket_type_id)
    )


class _BuyerBusy(Exception):
    """An offer's buyer row is locked by another transaction (see ``offer_released``)."""


def _check_limits(
    event: Event, ticket_type: TicketType, *, user_id: int, quantity: int, now: datetime, wait: bool = True
) -> None:
    """Refuse (409 ``limit_exceeded``) an entry or an offer that would take its buyer past a
    per-buyer limit, counting what their live orders of the event hold. Locks the buyer's row
    on PostgreSQL, as a purchase does; ``wait=False`` raises ``_BuyerBusy`` instead of waiting."""
    from .services import Line, _check_buyer_limits

    if event.max_tickets_per_buyer is None and ticket_type.max_per_buyer is None:
        return
    held = sql.lock_buyer_and_count_held(buyer_id=user_id, event_id=event.pk, now=now, wait=wait)
    if held is None:
        raise _BuyerBusy()
    held[ticket_type.pk] = held.get(ticket_type.pk, 0) + quantity
    _check_buyer_limits(event, [Line(ticket_type.pk, quantity)], {ticket_type.pk: ticket_type}, held=held)


def waitlist_join(*, user: User, event_id: int, ticket_type_id: int, quantity: int) -> WaitlistEntry:
    """Put ``user`` on the waiting list of a sold-out ticket type for ``quantity`` tickets.

    Only while the type is sold out for a newcomer (fewer than ``quantity`` on sale, or the list
    already has entries), else 409 ``not_sold_out``; one live entry per buyer and type (409
    ``already_on_waitlist``). Seated types are refused (400 ``seated_not_supported``): their
    offers would need seats chosen for the buyer. Joining while some stock is free (too little
    for this entry) asks for offers at once: earlier entries may fit.
    """
    from .services import stock_transaction

    now = timezone.now()
    event = Event.objects.public().filter(pk=event_id).first()
    if event is None:
        if Event.objects.alive().filter(pk=event_id, status=Event.Status.CANCELLED).exists():
            raise EventCancelled(_("The event is cancelled."))
        raise Http404  # no such event, or not published: nothing is on sale there
    ticket_type = TicketType.objects.filter(pk=ticket_type_id, event=event).first()
    if ticket_type is None:
        raise ApplicationError(_("This event has no such ticket type."), field="ticket_type")
    if ticket_type.seated:
        raise ApplicationError(
            _("Seated tickets have no waiting list yet."), code="seated_not_supported", field="ticket_type"
        )
    if event.ends_at <= now:
        raise SalesClosed(_("The event has ended."))
    if ticket_type.sales_start and now < ticket_type.sales_start:
        raise SalesClosed(_("Sales for %(name)s have not opened yet.") % {"name": ticket_type.name})
    if ticket_type.sales_end and now >= ticket_type.sales_end:
        raise SalesClosed(_("Sales for %(name)s have ended.") % {"name": ticket_type.name})
    if quantity > min(ticket_type.max_per_order, ticket_type.capacity):  # an entry no return of stock can serve
        raise LimitExceeded(
            ngettext(
                "At most %(max)d ticket of %(name)s per order.",
                "At most %(max)d tickets of %(name)s per order.",
                min(ticket_type.max_per_order, ticket_type.capacity),
            )
            % {"max": min(ticket_type.max_per_order, ticket_type.capacity), "name": ticket_type.name},
            extra={"ticket_type": ticket_type.pk, "max_per_order": ticket_type.max_per_order},
        )
    with stock_transaction():
        _check_limits(event, ticket_type, user_id=user.pk, quantity=quantity, now=now)  # buyer row first
        locked = _lock_ticket_type(ticket_type.pk)
        on_sale = locked.on_sale  # the pool (locked) plus the buckets (a sum read now: enough to decide)
        if not locked.waitlisted and on_sale >= quantity:
            raise NotSoldOut(
                ngettext(
                    "%(left)d ticket of %(name)s is on sale: buy it instead.",
                    "%(left)d tickets of %(name)s are on sale: buy them instead.",
                    on_sale,
                )
                % {"left": on_sale, "name": locked.name},
                extra={"ticket_type": locked.pk, "available": on_sale},
            )
        if WaitlistEntry.objects.filter(user=user, ticket_type=locked, status__in=WaitlistEntry.LIVE).exists():
            raise AlreadyOnWaitlist()
        try:
            with transaction.atomic():
                entry = WaitlistEntry.objects.create(
                    event=event, ticket_type=locked, user=user, quantity=quantity, created_at=now
                )
        except IntegrityError as exc:  # the constraint, should the check above ever be bypassed
            raise AlreadyOnWaitlist() from exc
        TicketType.objects.filter(pk=locked.pk).update(waitlisted=F("waitlisted") + 1)
        if not locked.waitlisted:
            catalogue_cache.catalogue_changed(event.pk)  # what a newcomer may buy is now 0
        if on_sale:
            stock_returned(ticket_type_ids=[locked.pk])
    entry.position = position_of(entry)
    return entry


def _close_waiting(entry: WaitlistEntry, *, to_status: str, now: datetime) -> bool:
    """Take a waiting entry off its list under its ticket type's row lock (the caller's transaction)."""
    locked = _lock_ticket_type(entry.ticket_type_id)
    if not WaitlistEntry.objects.filter(pk=entry.pk, status=Status.WAITING).update(status=to_status, closed_at=now):
        return False
    TicketType.objects.filter(pk=locked.pk).update(waitlisted=F("waitlisted") - 1)
    if locked.waitlisted == 1:
        catalogue_cache.catalogue_changed(locked.event_id)  # the last entry left: stock is on sale again
    elif locked.on_sale:
        stock_returned(ticket_type_ids=[locked.pk])  # the entry ahead that nothing fitted is gone
    return True


def _close(entry: WaitlistEntry, *, to_status: str) -> WaitlistEntry:
    """Take an entry off the list: a waiting one leaves the line; an offered one gives its offer up
    (its reserved order is cancelled and the stock goes to the next entries). Each in its own
    transaction, so locks keep their order: the ticket type's row for a waiting entry, the
    order's row (then the ticket type's, releasing) for an offered one."""
    from .services import release_held, stock_transaction

    now = timezone.now()
    current = WaitlistEntry.objects.filter(pk=entry.pk).values_list("status", "order_id")
    status, order_id = current.get()
    if status == Status.WAITING:
        with stock_transaction():
            if _close_waiting(entry, to_status=to_status, now=now):
                entry.refresh_from_db()
                return entry
        status, order_id = current.get()  # offered meanwhile?
    if status == Status.OFFERED:
        with stock_transaction():
            order = Order.objects.select_for_update().get(pk=order_id)
            if WaitlistEntry.objects.filter(pk=entry.pk, status=Status.OFFERED).update(status=to_status, closed_at=now):
                if order.status == Order.Status.RESERVED:
                    release_held(order, to_status=Order.Status.CANCELLED)
                entry.refresh_from_db()
                return entry
    entry.refresh_from_db()
    raise WaitlistEntryClosed(
        _("This entry is %(status)s and no longer on the list.") % {"status": entry.get_status_display().lower()}
    )


def waitlist_leave(*, entry: WaitlistEntry) -> WaitlistEntry:
    """The buyer leaves the list (``left``); leaving with an open offer cancels the offer's order.
    409 ``waitlist_entry_closed`` when the entry is not live any more."""
    return _close(entry, to_status=Status.LEFT)


def waitlist_remove(*, entry: WaitlistEntry) -> WaitlistEntry:
    """The organizer takes an entry off the list (``removed``), as if its buyer had left."""
    return _close(entry, to_status=Status.REMOVED)


def close_entries_of(*, user_id: int) -> int:
    """A deleted or deactivated account's live entries leave their lines (``removed``), each as
    ``waitlist_remove`` does: the counter follows, an open offer is given up."""
    closed = 0
    for entry in WaitlistEntry.objects.filter(user_id=user_id, status__in=WaitlistEntry.LIVE):
        try:
            _close(entry, to_status=Status.REMOVED)
        except WaitlistEntryClosed:
            continue  # closed meanwhile
        closed += 1
    return closed


def waitlist_add(*, event: Event, email: str, ticket_type_id: int, quantity: int) -> WaitlistEntry:
    """The organizer puts one of their buyers (an account with an order for any of the organizer's
    events) on the list, under the rules of joining. Any other address gets the same 400, so an
    organizer cannot learn whether somebody has an account, nor put strangers on a list."""
    user = (
        User.objects.filter(email__iexact=email.strip(), is_active=True, orders__event__organizer_id=event.organizer_id)
        .distinct()
        .first()
    )
    if user is None:
        raise ApplicationError(_("None of your buyers has this email address."), field="email")
    return waitlist_join(user=user, event_id=event.pk, ticket_type_id=ticket_type_id, quantity=quantity)


def waitlist_close_event(*, event_id: int) -> int:
    """An event was cancelled: its waiting entries are closed (offers' orders are cancelled with
    the event's other holds, ``release_event_holds``; their entries are closed here first)."""
    from .services import stock_transaction

    now = timezone.now()
    # Offered entries first, holding no ticket-type lock (a buyer leaving with an offer holds its
    # entry, then wants the ticket type's row): each entry's one conditional UPDATE decides.
    closed = WaitlistEntry.objects.filter(event_id=event_id, status=Status.OFFERED).update(
        status=Status.CLOSED, closed_at=now
    )
    with stock_transaction():
        ids = list(TicketType.objects.filter(event_id=event_id).order_by("pk").values_list("pk", flat=True))
        list(TicketType.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk"))
        closed += WaitlistEntry.objects.filter(event_id=event_id, status=Status.WAITING).update(
            status=Status.CLOSED, closed_at=now
        )
        TicketType.objects.filter(pk__in=ids, waitlisted__gt=0).update(waitlisted=0)
    return closed


# --- Offers ------------------------------------------------------------------------------------


def _offers_open(event: Event, ticket_type: TicketType, now: datetime) -> bool:
    return (
        event.is_public
        and event.ends_at > now
        and not ticket_type.seated
        and (ticket_type.sales_start is None or ticket_type.sales_start <= now)
        and (ticket_type.sales_end is None or now < ticket_type.sales_end)
    )


def offer_released(*, ticket_type_id: int, now: datetime | None = None) -> list[WaitlistEntry]:
    """Offer a ticket type's stock on sale to its waiting entries, first come first served.

    Under the ticket type's row lock (and its buckets'), each waiting entry in line whose quantity
    fits what is left (and whose buyer stays within the per-buyer limits) gets a ``reserved``
    order for its quantity at today's price, held ``WAITLIST_OFFER_MINUTES``: its items and HOLD
    ledger entries are written and its stock taken from the same rows a purchase takes it from.
    Entries that do not fit keep their place. Idempotent: two runs at once queue on the row lock,
    and the second finds the stock gone or the entries offered. Returns the entries offered.
    """
    from .services import stock_transaction

    now = now or timezone.now()
    with stock_transaction():
        ticket_type = (
            TicketType.objects.select_for_update(no_key=True, of=("self",))
            .select_related("event")
            .filter(pk=ticket_type_id)
            .first()
        )
        if ticket_type is None or not ticket_type.waitlisted:
            return []
        event = ticket_type.event
        if not _offers_open(event, ticket_type, now):
            return []
        buckets = stock.lock_buckets(ticket_type.pk) if ticket_type.stock_buckets > 1 else []
        on_sale = ticket_type.available + sum(available for _pk, available in buckets)
        left, offered, passed, busy = on_sale, [], [], False
        line = WaitlistEntry.objects.filter(ticket_type=ticket_type, status=Status.WAITING).order_by("created_at", "id")
        while left > 0:
            entry = line.filter(quantity__lte=left).exclude(pk__in=passed).first()
            if entry is None:
                break
            passed.append(entry.pk)
            try:
                # Never wait on a buyer's row while holding the ticket type's: a purchase takes them
                # the other way round. A busy buyer stops the walk (the line keeps its order) and the
                # rest is offered again shortly.
                _check_limits(event, ticket_type, user_id=entry.user_id, quantity=entry.quantity, now=now, wait=False)
            except LimitExceeded:
                continue  # skipped: it keeps its place; the next entry in line may fit
            except _BuyerBusy:
                busy = True
                break
            offered.append(entry)
            left -= entry.quantity
        if busy and not settings.CELERY_TASK_ALWAYS_EAGER:  # eagerly, the walk would only meet the lock again
            from .tasks import offer_waitlist  # tasks import this module

            transaction.on_commit(lambda: offer_waitlist.apply_async((ticket_type_id,), countdown=2), robust=True)
        if not offered:
            return []
        _write_offers(event, ticket_type, offered, now)
        taken = on_sale - left
        if buckets:
            pool = stock.lay_out(ticket_type.pk, buckets, on_sale=left, buckets=ticket_type.stock_buckets)
            TicketType.objects.filter(pk=ticket_type.pk).update(
                available=pool, waitlisted=F("waitlisted") - len(offered)
            )
        else:
            TicketType.objects.filter(pk=ticket_type.pk).update(
                available=F("available") - taken, waitlisted=F("waitlisted") - len(offered)
            )
        catalogue_cache.catalogue_changed(event.pk)
        send_on_commit(stock_changed, TicketType, event_id=event.pk, ticket_type_ids=[ticket_type.pk])
        for entry in offered:
            if entry.status == Status.OFFERED:  # a free type's is claimed at once, and confirmed instead
                offer_made(entry)
    logger.info("Ticket type %s: %d waiting list offers", ticket_type_id, len(offered))
    return offered


def _write_offers(event: Event, ticket_type: TicketType, entries: Sequence[WaitlistEntry], now: datetime) -> None:
    """Each entry's offer: a reserved order, its item and its HOLD ledger entry; the entry offered.

    A free ticket type's offer is sold at once, as a free purchase is (a free order has nothing to
    pay, so a reservation could only run out): the order is paid, its tickets issued, the entry
    claimed, and the buyer gets the order's confirmation with the tickets."""
    from .confirmation import order_confirmation_queue
    from .services import announce, sell

    price = ticket_type.price_cents
    free = price == 0
    expires_at = None if free else now + timedelta(minutes=settings.WAITLIST_OFFER_MINUTES)
    orders = []
    for entry in entries:
        entry.order = Order(
            id=uuid.uuid4(),
            buyer_id=entry.user_id,
            event=event,
            status=Order.Status.PAID if free else Order.Status.RESERVED,
            total_cents=price * entry.quantity,
            currency=event.currency,
            expires_at=expires_at,
            paid_at=now if free else None,
        )
        orders.append(entry.order)
        entry.status, entry.offered_at = (Status.CLAIMED if free else Status.OFFERED), now
    Order.objects.bulk_create(orders)
    announce(orders, status=Order.Status.PAID if free else Order.Status.RESERVED, previous=None)
    OrderItem.objects.bulk_create(
        OrderItem(order=entry.order, ticket_type=ticket_type, quantity=entry.quantity, unit_price_cents=price)
        for entry in entries
    )
    InventoryEntry.objects.bulk_create(
        InventoryEntry(
            order=entry.order, ticket_type=ticket_type, kind=InventoryEntry.Kind.HOLD, quantity=entry.quantity
        )
        for entry in entries
    )
    WaitlistEntry.objects.bulk_update(entries, ["status", "offered_at", "order"])
    if free:
        for entry in entries:
            sell(entry.order, [(ticket_type.pk, entry.quantity)])
            order_confirmation_queue(order=entry.order)


def offer_sweep() -> int:
    """Beat's safety net: every ticket type with waiting entries and stock on sale gets its offers
    (an offer task lost with a broker or a worker is made up for here)."""
    types = (
        TicketType.objects.filter(waitlisted__gt=0).with_on_sale().filter(Q(available__gt=0) | Q(bucket_stock__gt=0))
    )
    offered = 0
    for pk in types.values_list("pk", flat=True):
        try:
            offered += len(offer_released(ticket_type_id=pk))
        except Exception:  # one type's trouble does not stop the others; the next sweep tries again
            logger.exception("Waiting list offers for ticket type %s failed", pk)
    return offered


# --- Telling the buyer -------------------------------------------------------------------------


def offer_made(entry: WaitlistEntry) -> None:
    """An offer was made (inside its transaction): the buyer is told once it commits.

    The one place the buyer hears of an offer: the email goes out here, and ``waitlist_offer_made``
    tells the apps that build on orders (realtime: ``waitlist.offer`` on ``/ws/orders/``).
    """
    from .tasks import send_waitlist_offer  # tasks import this module

    transaction.on_commit(partial(send_waitlist_offer.delay, entry.pk), robust=True)
    order = entry.order
    offer = WaitlistOffer(
        order.pk,
        entry.user_id,
        entry.event_id,
        entry.ticket_type_id,
        entry.quantity,
        order.total_cents,
        order.currency,
        order.expires_at,
    )
    send_on_commit(waitlist_offer_made, WaitlistEntry, offer=offer)


def offer_notice_send(*, entry_id: int) -> bool:
    """Email the buyer their offer, once; False when there is nothing (left) to send."""
    entry = (
        WaitlistEntry.objects.select_related("user", "event", "ticket_type", "order")
        .filter(pk=entry_id, status=Status.OFFERED, offer_notified_at__isnull=True)
        .first()
    )
    if entry is None or not entry.user.email or entry.order.status != Order.Status.RESERVED:
        return False
    event, order = entry.event, entry.order
    context = {
        "buyer_name": entry.user.name or entry.user.email,
        "event": event,
        "ticket_type": entry.ticket_type,
        "quantity": entry.quantity,
        "starts": format_local_time(event.starts_at, event.timezone),
        "expires": format_local_time(order.expires_at, event.timezone),
        "total": format_money(order.total_cents, order.currency) if order.total_cents else None,
        "order_id": str(order.pk),
    }
    message = EmailMultiAlternatives(
        subject=" ".join(render_to_string("orders/email/waitlist_offer_subject.txt", context).split()),
        body=render_to_string("orders/email/waitlist_offer.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[entry.user.email],
    )
    message.attach_alternative(render_to_string("orders/email/waitlist_offer.html", context), "text/html")
    with transaction.atomic():  # claimed with SKIP LOCKED: two runs at once send one email
        claimed = (
            WaitlistEntry.objects.select_for_update(skip_locked=True)
            .filter(pk=entry.pk, offer_notified_at__isnull=True)
            .only("pk")
            .first()
        )
        if claimed is None:
            return False
        message.send()
        WaitlistEntry.objects.filter(pk=entry.pk).update(offer_notified_at=timezone.now())
    return True


# --- Reads -------------------------------------------------------------------------------------


def with_position(entries: QuerySet[WaitlistEntry]) -> QuerySet[WaitlistEntry]:
    """``position``: 1 for the first waiting entry of its ticket type, None when not waiting."""
    ahead = (
        WaitlistEntry.objects.filter(ticket_type=OuterRef("ticket_type"), status=Status.WAITING)
        .filter(Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id")))
        .order_by()
        .values("ticket_type")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return entries.annotate(
        position=Case(
            When(status=Status.WAITING, then=Coalesce(Subquery(ahead, output_field=IntegerField()), 0) + Value(1)),
            default=None,
            output_field=IntegerField(),
        )
    )


def position_of(entry: WaitlistEntry) -> int | None:
    return with_position(WaitlistEntry.objects.filter(pk=entry.pk)).values_list("position", flat=True).first()


def entries_of(*, user: User) -> QuerySet[WaitlistEntry]:
    """The caller's entries, newest first, with their positions and offers."""
    qs = WaitlistEntry.objects.filter(user=user).select_related("event", "ticket_type", "order")
    return with_position(qs).order_by("-created_at", "-id")


def entry_of(*, user: User, entry_id: int) -> WaitlistEntry:
    entry = entries_of(user=user).filter(pk=entry_id).first()
    if entry is None:
        raise Http404
    return entry


def entries_of_event(*, event: Event, status: str | None = None) -> QuerySet[WaitlistEntry]:
    """An event's list for its organizer, in line order (first come first), with the buyers."""
    qs = WaitlistEntry.objects.filter(event=event).select_related("user", "ticket_type", "order")
    if status:
        qs = qs.filter(status=status)
    return with_position(qs).order_by("created_at", "id")


def entry_of_event(*, event: Event, entry_id: int) -> WaitlistEntry:
    entry = entries_of_event(event=event).filter(pk=entry_id).first()
    if entry is None:
        raise Http404
    return entry


def waiting_counts(*, ticket_type_ids: Iterable[int]) -> dict[int, int]:
    """Waiting entries per ticket type, counted from the entries (``check_inventory`` compares)."""
    rows = (
        WaitlistEntry.objects.filter(ticket_type_id__in=list(ticket_type_ids), status=Status.WAITING)
        .order_by()
        .values_list("ticket_type_id")
        .annotate(n=Count("pk"))
    )
    return dict(rows)
