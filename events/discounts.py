"""Discount codes: organizers' CRUD, a code's price for an order, and its uses claimed and given back.

Pricing (decided here, documented in the API schema):
- a percentage applies to the subtotal of the order's *eligible* lines (the ticket types the
  code names, or all of them when it names none), rounded in the buyer's favour: the discount
  is rounded up to a whole minor unit, so nobody pays more than (100 - percent) % of the list price;
- a fixed amount comes off once per order, capped at the eligible subtotal;
- so a total never goes below zero, and a total of 0 is a free order (paid at once).

Uses: ``DiscountCode.uses`` counts the live (reserved or paid) orders carrying the code. A
purchase claims one use with a single conditional UPDATE in its own transaction, right before it
takes the ticket-type stock (so the hot ticket-type row is not held while the code's row is
waited for), and the database refuses ``uses > max_uses`` besides. A use is given back exactly
when the order's stock is: on expiry, cancellation and refund (each under the order's row lock),
always before the ticket-type rows are locked. Lock order, for deadlock freedom: order row,
discount code rows (ascending id), ticket-type rows.

A code is validated with the rest of the order, before any write or lock: unknown, inactive,
outside its window, or applying to none of the order's ticket types is a 400 ``invalid`` with
``errors.discount_code`` (and a ``reason``); a code with no use left is a 409
``discount_code_exhausted``, without writing anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from eventflow.api.errors import ApplicationError, Conflict

from .errors import EventCancelled
from .models import DiscountCode, Event, TicketType

MAX_CODE_LENGTH = 64
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_CODE = re.compile(CODE_PATTERN)
MAX_USES = 10_000_000
FIELDS = {"code", "percent_off", "amount_off_cents", "max_uses", "valid_from", "valid_until", "active"}


# --- Errors -------------------------------------------------------------------------------------


class DiscountCodeExhausted(Conflict):
    default_code = "discount_code_exhausted"
    default_detail = gettext_lazy("This discount code has been used as often as it may be.")


class DiscountCodeTaken(ApplicationError):
    default_code = "discount_code_taken"
    default_detail = gettext_lazy("This event already has a discount code with this text (case does not matter).")

    def __init__(self) -> None:
        super().__init__(field="code")


class MaxUsesBelowUses(Conflict):
    default_code = "max_uses_below_uses"
    default_detail = gettext_lazy("max_uses cannot drop below the code's current uses.")


class InvalidDiscountCode(ApplicationError):
    """400 ``invalid`` on ``discount_code``; ``reason`` says which check failed."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail, field="discount_code", extra={"reason": reason})


# Reasons a code is refused at checkout (the problem's ``reason``).
REASONS = ("unknown", "not_yet_valid", "expired", "not_applicable")


# --- Pricing --------------------------------------------------------------------------------------


def discount_for(*, percent_off: int | None, amount_off_cents: int | None, eligible_cents: int) -> int:
    """Money off ``eligible_cents`` (the eligible lines' subtotal), never more than it."""
    if eligible_cents <= 0:
        return 0
    if percent_off is not None:
        return min(eligible_cents, -(-eligible_cents * percent_off // 100))  # rounded up: the buyer's favour
    return min(eligible_cents, amount_off_cents or 0)


@dataclass(frozen=True)
class Discount:
    """A code found valid for an order: what it takes off, and the code (for the order row)."""

    code: DiscountCode
    cents: int


# A purchase with a code reads it (with its ticket types) in one statement and claims a use in
# another. bench/purchase_cost.py --discount-code --callgrind: built with the ORM (the lookup, the
# ticket types' query, the conditional UPDATE) a discounted purchase cost 12.45 M instructions
# against 5.06 M for a plain one; with these two statements, see bench/README.md ("Discount codes").
_CODE_FIELDS = (
    "id",
    "event_id",
    "code",
    "percent_off",
    "amount_off_cents",
    "max_uses",
    "uses",
    "valid_from",
    "valid_until",
    "active",
)
_LOOKUP = """
    SELECT {}, ARRAY(
        SELECT m."tickettype_id" FROM "events_discountcode_ticket_types" m WHERE m."discountcode_id" = d."id"
    )
    FROM "events_discountcode" d
    WHERE d."event_id" = %s AND LOWER(d."code") = %s AND d."deleted_at" IS NULL
""".format(", ".join(f'd."{name}"' for name in _CODE_FIELDS))  # noqa: S608 - constant column names, no input
_CLAIM = """
    UPDATE "events_discountcode" SET "uses" = "uses" + 1
    WHERE "id" = %s AND "active" AND "deleted_at" IS NULL AND ("max_uses" IS NULL OR "uses" < "max_uses")
"""
if (DiscountCode._meta.db_table, DiscountCode.ticket_types.through._meta.db_table) != (
    "events_discountcode",
    "events_discountcode_ticket_types",
):
    raise RuntimeError("events/discounts.py names tables the models no longer use")


def _lookup(event_id: int, text: str) -> tuple[DiscountCode, set[int]] | None:
    """The event's live code ``text`` (any case) and the ticket types it is limited to."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LOOKUP, [event_id, text.lower()])
            row = cursor.fetchone()
        if row is None:
            return None
        return DiscountCode.from_db(connection.alias, _CODE_FIELDS, row[:-1]), set(row[-1])
    code = (
        DiscountCode.objects.alias(lower=Lower("code"))
        .filter(event_id=event_id, lower=text.lower(), deleted_at__isnull=True)
        .only(*_CODE_FIELDS)
        .first()
    )
    return None if code is None else (code, set(code.ticket_types.values_list("pk", flat=True)))


def discount_for_order(*, event_id: int, text: str, lines: Iterable[tuple[int, int, int]], now: datetime) -> Discount:
    """Check ``text`` against the event's codes for an order of ``lines`` (ticket type, quantity,
    unit price), without a lock: 400 or 409 as the module says, else the discount.

    The use is claimed later, in the order's transaction (:func:`claim`)."""
    text = text.strip()
    found = _lookup(event_id, text) if len(text) <= MAX_CODE_LENGTH and _CODE.fullmatch(text) else None
    code, limited = found or (None, set())
    if code is None or not code.active:
        raise InvalidDiscountCode(_("This event has no such discount code."), "unknown")
    if code.valid_from is not None and now < code.valid_from:
        raise InvalidDiscountCode(
            _("This discount code is valid from %(start)s.") % {"start": code.valid_from.isoformat()}, "not_yet_valid"
        )
    if code.valid_until is not None and now >= code.valid_until:
        raise InvalidDiscountCode(_("This discount code has expired."), "expired")
    eligible = [line for line in lines if not limited or line[0] in limited]
    if not eligible:
        raise InvalidDiscountCode(_("This discount code applies to none of these tickets."), "not_applicable")
    if code.max_uses is not None and code.uses >= code.max_uses:
        raise DiscountCodeExhausted()  # the lock-free shortcut; claim() decides under the lock
    cents = discount_for(
        percent_off=code.percent_off,
        amount_off_cents=code.amount_off_cents,
        eligible_cents=sum(quantity * price for _pk, quantity, price in eligible),
    )
    return Discount(code=code, cents=cents)


# --- Uses ----------------------------------------------------------------------------------------


def claim(discount: Discount) -> None:
    """Take one use of the code, in the caller's (the order's) transaction: one conditional UPDATE
    that locks the code's row until the commit and re-checks the limit on its newest version.
    409 ``discount_code_exhausted`` when none is left; 400 when the code was switched off or
    deleted since the order was validated. The caller's rollback gives the use back."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [discount.code.pk])
        if cursor.rowcount == 1:
            return
    if DiscountCode.objects.filter(pk=discount.code.pk, active=True, deleted_at__isnull=True).exists():
        raise DiscountCodeExhausted()
    raise InvalidDiscountCode(_("This event has no such discount code."), "unknown")


def give_back(order_ids: Sequence[Any]) -> None:
    """The orders ``order_ids`` (locked by the caller, leaving reserved or paid) no longer carry
    their codes' uses. Call before locking ticket-type rows (the module's lock order)."""
    from orders.models import Order  # orders build on events, not the reverse

    per_code = Counter(
        Order.objects.filter(pk__in=list(order_ids), discount_code__isnull=False).values_list(
            "discount_code_id", flat=True
        )
    )
    for code_id in sorted(per_code):  # ascending ids: two releases never deadlock on codes
        DiscountCode.objects.filter(pk=code_id).update(uses=F("uses") - per_code[code_id])


def retake(order_id: Any) -> bool:
    """A payment arrived for an order whose hold (and code use) was given back: take the use again,
    if there is one left (False otherwise). Caller holds the order lock, in a savepoint."""
    from orders.models import Order

    code_id = Order.objects.filter(pk=order_id).values_list("discount_code_id", flat=True).first()
    if code_id is None:
        return True
    limited = Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses"))
    return bool(DiscountCode.objects.filter(limited, pk=code_id).update(uses=F("uses") + 1))


# --- Organizers' CRUD ----------------------------------------------------------------------------


def codes_of(*, event: Event) -> QuerySet[DiscountCode]:
    """The event's codes (not deleted), with their ticket types in one more query."""
    return (
        DiscountCode.objects.filter(event=event, deleted_at__isnull=True)
        .prefetch_related("ticket_types")
        .order_by("code", "pk")
    )


def code_get(*, event: Event, code_id: int) -> DiscountCode:
    from django.http import Http404

    code = codes_of(event=event).filter(pk=code_id).first()
    if code is None:
        raise Http404
    code.event = event
    return code


def _ticket_types_of_event(event: Event, ids: Iterable[int] | None) -> list[TicketType] | None:
    if ids is None:
        return None
    wanted = sorted(set(ids))
    found = list(TicketType.objects.filter(event=event, pk__in=wanted).order_by("pk"))
    if len(found) != len(wanted):
        missing = sorted(set(wanted) - {tt.pk for tt in found})
        raise ApplicationError(
            _("This event has no ticket type %(ids)s.") % {"ids": ", ".join(map(str, missing))}, field="ticket_types"
        )
    return found


def _check(code: DiscountCode) -> None:
    if (code.percent_off is None) == (code.amount_off_cents is None):
        raise ApplicationError(_("Give either percent_off or amount_off_cents, not both."), field="percent_off")
    if code.valid_from is not None and code.valid_until is not None and code.valid_until <= code.valid_from:
        raise ApplicationError(_("Must be later than valid_from."), field="valid_until")


def _taken(event: Event, text: str, exclude_pk: int | None) -> bool:
    others = DiscountCode.objects.alias(lower=Lower("code")).filter(
        event=event, lower=text.lower(), deleted_at__isnull=True
    )
    return others.exclude(pk=exclude_pk).exists()


def _save(code: DiscountCode, fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            code.save(update_fields=fields)
    except IntegrityError as exc:
        if "discount_code_unique_per_event" in str(exc):
            raise DiscountCodeTaken() from exc
        raise


def _lock_event(event: Event) -> Event:
    locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
    if locked.status == Event.Status.CANCELLED:
        raise EventCancelled()
    return locked


@transaction.atomic
def discount_code_create(
    *, event: Event, ticket_types: Iterable[int] | None = None, by: User | None = None, **data: Any
) -> DiscountCode:
    """A new code of ``event``; ``ticket_types`` (ids of the event's) limit it, none: all types."""
    event = _lock_event(event)
    data = {k: v for k, v in data.items() if k in FIELDS}
    data["code"] = data["code"].strip()
    code = DiscountCode(event=event, **data)
    _check(code)
    if _taken(event, code.code, None):
        raise DiscountCodeTaken()
    types = _ticket_types_of_event(event, ticket_types)
    _save(code)
    if types:
        code.ticket_types.set(types)
    return code


@transaction.atomic
def discount_code_update(
    *, discount_code: DiscountCode, ticket_types: Iterable[int] | None = None, by: User | None = None, **data: Any
) -> DiscountCode:
    """Change a code. Sending one of ``percent_off`` / ``amount_off_cents`` switches the kind (the
    other is cleared); ``max_uses`` never below ``uses`` (409). Orders already placed keep the
    discount they got."""
    event = _lock_event(discount_code.event)
    locked = DiscountCode.objects.select_for_update(no_key=True).get(pk=discount_code.pk)  # uses is read under the lock
    data = {k: v for k, v in data.items() if k in FIELDS}
    if "code" in data:
        data["code"] = data["code"].strip()
    if data.get("percent_off") is not None and "amount_off_cents" not in data:
        data["amount_off_cents"] = None
    if data.get("amount_off_cents") is not None and "percent_off" not in data:
        data["percent_off"] = None
    for field, value in data.items():
        setattr(locked, field, value)
    _check(locked)
    if locked.max_uses is not None and locked.max_uses < locked.uses:
        raise MaxUsesBelowUses(
            _("max_uses cannot drop below %(uses)d: that many live orders carry the code.") % {"uses": locked.uses},
            extra={"uses": locked.uses},
        )
    if "code" in data and _taken(event, locked.code, locked.pk):
        raise DiscountCodeTaken()
    types = _ticket_types_of_event(event, ticket_types)
    if data:
        _save(locked, [*data, "updated_at"])
    if types is not None:
        locked.ticket_types.set(types)
    locked.event = event
    return locked


@transaction.atomic
def discount_code_delete(*, discount_code: DiscountCode, by: User | None = None) -> None:
    """Gone for buyers and organizers. A code some order carries stays in the database, marked
    deleted (the orders, their totals and the sales report keep it); any other is deleted."""
    from orders.models import Order

    locked = DiscountCode.objects.select_for_update(no_key=True).get(pk=discount_code.pk)
    if Order.objects.filter(discount_code=locked).exists():
        locked.deleted_at = timezone.now()
        locked.active = False
        locked.save(update_fields=["deleted_at", "active", "updated_at"])
    else:
        locked.delete()


@receiver(pre_delete, sender=TicketType, dispatch_uid="discount_codes_ticket_type_deleted")
def _ticket_type_deleted(sender, instance: TicketType, **kwargs) -> None:
    """A code limited to ticket types would apply to all of them once the last of its types is
    deleted (its link rows go with the type): switch such a code off instead."""
    only_this = (
        DiscountCode.objects.filter(ticket_types=instance)
        .exclude(ticket_types__in=TicketType.objects.filter(event_id=instance.event_id).exclude(pk=instance.pk))
        .values_list("pk", flat=True)
    )
    DiscountCode.objects.filter(pk__in=list(only_this)).update(active=False)


# --- Consistency -----------------------------------------------------------------------------------


def uses_report(*, event_id: int | None = None) -> list[str]:
    """Codes whose ``uses`` differ from the live orders carrying them (``check_inventory``)."""
    from django.db.models import Count

    from orders.models import Order

    codes = DiscountCode.objects.all()
    if event_id is not None:
        codes = codes.filter(event_id=event_id)
    live = Q(orders__status__in=[Order.Status.RESERVED, Order.Status.PAID])
    return [
        f"discount code {pk} (event {event}): uses {uses} but {carried} live orders carry it"
        for pk, event, uses, carried in codes.annotate(carried=Count("orders", filter=live))
        .exclude(uses=F("carried"))
        .values_list("pk", "event_id", "uses", "carried")
        .order_by("pk")
    ]
