"""Orders, their items and tickets, idempotency records and the inventory ledger."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from events.models import DiscountCode, Event, TicketType


class Order(models.Model):
    """A buyer's purchase of tickets of one event.

    ``reserved`` holds stock until ``expires_at``; it becomes ``paid``,
    ``expired`` or ``cancelled``; ``paid`` may become ``refunded``. Every move
    out of ``reserved`` happens under a row lock on the order, so stock is
    returned exactly once whoever gets there first.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved", _("Reserved")
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RESERVED)
    total_cents = models.PositiveIntegerField(_("total (minor units)"))
    fee_cents = models.PositiveIntegerField(_("platform fee (minor units)"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    # A discount code's money off the list price (events/discounts.py): total = list price - discount.
    discount_code = models.ForeignKey(
        DiscountCode,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("discount code"),
    )
    discount_cents = models.PositiveIntegerField(_("discount (minor units)"), default=0)
    expires_at = models.DateTimeField(_("hold expires at"), null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(
        _("confirmation sent at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the confirmation email with the tickets went out: set once, so a retry sends no second one."),
    )
    refund_notice_sent_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("When the buyer was emailed that the order was refunded.")
    )
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the order expired, was cancelled or refunded.")
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="reserved") | Q(expires_at__isnull=False), name="order_reserved_has_expiry"
            ),
            models.CheckConstraint(condition=Q(fee_cents__lte=models.F("total_cents")), name="order_fee_within_total"),
            models.CheckConstraint(
                condition=Q(discount_code__isnull=False) | Q(discount_cents=0), name="order_discount_has_code"
            ),
        ]
        indexes = [
            # The expiry sweep: due holds only.
            models.Index(fields=["expires_at"], condition=Q(status="reserved"), name="order_due_holds"),
            models.Index(fields=["buyer", "-created_at"], name="order_buyer_newest"),
            models.Index(fields=["event", "status"], name="order_event_status"),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"

    @property
    def subtotal_cents(self) -> int:
        """The list price of the order's tickets, before any discount."""
        return self.total_cents + self.discount_cents


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveIntegerField()
    unit_price_cents = models.PositiveIntegerField()

    class Meta:
        ordering = ["ticket_type_id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_item_quantity_positive"),
            models.UniqueConstraint(fields=["order", "ticket_type"], name="order_item_one_line_per_ticket_type"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.ticket_type.name}"

    @property
    def subtotal_cents(self) -> int:
        return self.quantity * self.unit_price_cents


def new_ticket_code() -> str:
    """160 random bits, URL-safe: unguessable, and short enough for a QR code.

    Never starting with "-", so no spreadsheet mistakes a code for a formula and
    CSV exports show every code exactly as the door scanner reads it."""
    while (code := secrets.token_urlsafe(20)).startswith("-"):
        pass
    return code


class Ticket(models.Model):
    """One admission, issued when its order is paid."""

    class Status(models.TextChoices):
        VALID = "valid", _("Valid")
        VOID = "void", _("Void")
        # Given to someone else (orders.transfers): its code no longer admits anybody.
        TRANSFERRED = "transferred", _("Transferred")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="tickets")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="tickets")
    holder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets")
    seat = models.ForeignKey(
        "events.Seat", on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets", editable=False
    )
    code = models.CharField(max_length=64, unique=True, default=new_ticket_code, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID)
    issued_at = models.DateTimeField(auto_now_add=True)
    transferred_from = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="transferred_to",
        help_text=_("The ticket this one replaced when its holder transferred it (orders.transfers)."),
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["holder", "status"], name="ticket_holder_status")]

    def __str__(self) -> str:
        return f"{self.ticket_type.name} ticket {self.code[:6]}…"


class InventoryEntry(models.Model):
    """One movement of stock, appended and never changed.

    The kinds move tickets between three buckets of a ticket type:
    ``hold`` available → held, ``release`` held → available, ``sell`` held →
    sold, ``refund`` sold → available. So for every ticket type
    ``capacity = available + held + sold`` can be proven from the ledger
    (``manage.py check_inventory``).
    """

    class Kind(models.TextChoices):
        HOLD = "hold", _("Hold")
        RELEASE = "release", _("Release")
        SELL = "sell", _("Sell")
        REFUND = "refund", _("Refund")

    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="inventory_entries")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="inventory_entries")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = _("inventory entries")
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="inventory_entry_quantity_positive")]
        indexes = [models.Index(fields=["ticket_type", "kind"], name="inventory_entry_type_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} x {self.ticket_type_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise RuntimeError("Inventory entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Inventory entries are append-only.")


class IdempotencyRecord(models.Model):
    """The first response to a request carrying an ``Idempotency-Key``, per user and key."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=64, help_text=_("The operation the key was used for."))
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of the request body."))
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_key_per_user")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expiry")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class Payment(models.Model):
    """One attempt to collect an order's total through a provider.

    An order has at most one ``pending`` payment at a time, so a retried
    ``pay`` reuses it instead of opening a second charge. ``succeeded`` means
    the gateway has the money; whether the order became ``paid`` is the
    order's status (a late or mismatched payment may instead be refunded or
    flagged for staff, ``needs_review``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=16)
    reference = models.CharField(_("provider reference"), max_length=255, blank=True, default="")
    amount_cents = models.PositiveIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    fee_cents = models.PositiveIntegerField(_("platform fee (minor units)"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    client_secret = models.CharField(max_length=255, blank=True, default="")
    checkout_url = models.URLField(max_length=500, blank=True, default="")
    needs_review = models.BooleanField(
        _("needs review"), default=False, help_text=_("The gateway reported something staff must look at.")
    )
    review_note = models.TextField(_("review note"), blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(status="pending"), name="payment_one_pending_per_order"
            ),
            models.UniqueConstraint(
                fields=["provider", "reference"], condition=~Q(reference=""), name="payment_reference_per_provider"
            ),
            models.CheckConstraint(
                condition=Q(fee_cents__lte=models.F("amount_cents")), name="payment_fee_within_amount"
            ),
        ]
        indexes = [models.Index(fields=["needs_review"], condition=Q(needs_review=True), name="payment_needs_review")]

    def __str__(self) -> str:
        return f"Payment {self.pk} ({self.provider}, {self.status})"


class Refund(models.Model):
    """Money going back for one payment, in full. One per payment, so asking twice refunds once.

    The row commits with the order's move to ``refunded`` (and its tickets
    voided, its stock returned); the gateway is called afterwards with the
    refund's id as idempotency key, and retried until it succeeds.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Reason(models.TextChoices):
        REQUESTED_BY_BUYER = "requested_by_buyer", _("Requested by the buyer")
        EVENT_CANCELLED = "event_cancelled", _("Event cancelled")
        LATE_PAYMENT = "late_payment", _("Paid after the hold expired, nothing left")
        DUPLICATE_PAYMENT = "duplicate_payment", _("The order was already paid")
        STAFF = "staff", _("Refunded by staff")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="refund")
    amount_cents = models.PositiveIntegerField(_("amount (minor units)"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    reference = models.CharField(_("provider reference"), max_length=255, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], condition=~Q(status="succeeded"), name="refund_open")]

    def __str__(self) -> str:
        return f"Refund {self.pk} ({self.status})"


class WebhookEvent(models.Model):
    """A provider's notification, stored once per (provider, event id): a redelivery changes nothing."""

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=32)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=32, help_text=_("What processing the event did."))
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"


class Payout(Order):
    """The back office's payouts page (net owed per organizer); no table of its own."""

    class Meta:
        proxy = True
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")


class PurchaseQueue(models.Model):
    """The line of a high-demand event: hands out places in it (``orders.queue``).

    One row per event that ever queued a purchase. ``last_seq`` is the place
    given to the latest request; it is incremented by one statement in its own
    short transaction, never inside a purchase, so this row is locked only for
    that statement.
    """

    event = models.OneToOneField(Event, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Queue of event {self.event_id} ({self.last_seq} places given)"


class PurchaseRequest(models.Model):
    """A purchase of a high-demand event waiting its turn, and then its outcome.

    ``queued`` → ``placed`` (``order`` set: the same order a direct purchase
    makes) | ``refused`` (``error_code``, the problem code a direct purchase
    would have answered, e.g. ``sold_out``) | ``expired`` (it waited longer
    than ``ORDER_QUEUE_MAX_WAIT_MINUTES``). Requests of an event are served in
    ``seq`` order; a buyer has at most one queued request per event.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PLACED = "placed", _("Placed")
        REFUSED = "refused", _("Refused")
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchase_requests")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="purchase_requests")
    seq = models.PositiveBigIntegerField(_("place in line"), help_text=_("Requests of an event are served in order."))
    lines = models.JSONField(help_text=_('What to buy: [{"ticket_type": id, "quantity": n}, ...]'))
    discount_code = models.CharField(_("discount code"), max_length=64, blank=True, default="")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    order = models.OneToOneField(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="purchase_request"
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    error_detail = models.TextField(_("error detail"), blank=True, default="")
    error_extra = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["event", "seq"]
        constraints = [
            # One live request per buyer and event: a second click cannot queue the buyer twice.
            models.UniqueConstraint(
                fields=["buyer", "event"], condition=Q(status="queued"), name="purchase_request_one_queued_per_buyer"
            ),
            models.CheckConstraint(
                condition=~Q(status="placed") | Q(order__isnull=False), name="purchase_request_placed_has_order"
            ),
            models.CheckConstraint(
                condition=~Q(status="refused") | ~Q(error_code=""), name="purchase_request_refused_has_code"
            ),
        ]
        indexes = [
            # The line itself: the workers' FIFO scan and the head a position is counted from.
            models.Index(fields=["event", "seq"], condition=Q(status="queued"), name="purchase_request_queue"),
        ]

    def __str__(self) -> str:
        return f"Purchase request {self.pk} ({self.status})"


class WaitlistEntry(models.Model):
    """A buyer waiting for tickets of a sold-out ticket type (``orders.waitlist``).

    ``waiting`` entries are served first come, first served (``created_at``, then
    ``id``): when stock comes back, the earliest entries whose quantity fits get an
    offer, a ``reserved`` order of their own (``offered``). The offer is paid
    (``claimed``), runs out (``lapsed``) or is cancelled (``declined``), and its stock
    moves on to the next entries. A buyer may leave (``left``); the organizer may
    remove an entry (``removed``); an event's cancellation closes its entries
    (``closed``). Moves out of ``waiting`` happen under the ticket type's row lock,
    with ``TicketType.waitlisted``; moves out of ``offered`` under the offer order's.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Offered")
        CLAIMED = "claimed", _("Claimed (offer paid)")
        LAPSED = "lapsed", _("Lapsed (offer expired)")
        DECLINED = "declined", _("Declined (offer cancelled)")
        LEFT = "left", _("Left the list")
        REMOVED = "removed", _("Removed by the organizer")
        CLOSED = "closed", _("Closed (event cancelled)")

    LIVE = (Status.WAITING, Status.OFFERED)

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="waitlist_entries")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.CASCADE, related_name="waitlist_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="waitlist_entries")
    quantity = models.PositiveSmallIntegerField(_("quantity"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.WAITING)
    order = models.OneToOneField(
        Order,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="waitlist_entry",
        help_text=_("The offer: a reserved order made for this entry when stock came back."),
    )
    created_at = models.DateTimeField(_("joined at"), db_index=True)
    offered_at = models.DateTimeField(_("offered at"), null=True, blank=True)
    offer_notified_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("When the buyer was emailed the offer: set once.")
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("waiting list entry")
        verbose_name_plural = _("waiting list entries")
        constraints = [
            # One live entry per buyer and ticket type: a second click cannot queue the buyer twice.
            models.UniqueConstraint(
                fields=["user", "ticket_type"],
                condition=Q(status__in=["waiting", "offered"]),
                name="waitlist_one_live_entry_per_user",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="waitlist_quantity_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=["offered", "claimed", "lapsed", "declined"]) | Q(order__isnull=False),
                name="waitlist_offer_has_order",
            ),
        ]
        indexes = [
            # The line itself: the offers' FIFO walk and the count a position is.
            models.Index(
                fields=["ticket_type", "created_at", "id"], condition=Q(status="waiting"), name="waitlist_fifo"
            ),
            models.Index(fields=["user", "-created_at"], name="waitlist_user_newest"),
        ]

    def __str__(self) -> str:
        return f"Waiting list entry {self.pk} ({self.status})"
