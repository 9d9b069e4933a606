"""Orders and money in the back office: read-only, scoped like events.

Orders, their items, tickets, payments, refunds and inventory ledger are
records of what happened; nothing here edits, adds or deletes them. State
changes are actions that call the same services as the API ("Cancel selected
reservations", "Refund selected orders", staff's payment and refund actions),
so stock and money move exactly once whoever asks.

Superusers see every order; an organizer sees the orders of their own
events, and anybody else's answer as if they did not exist (the same rule as
``events.admin``). Organizers hold only the view permissions
(``accounts.services.ORGANIZER_PERMISSIONS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from eventflow.admin_mixins import SafeLookupsMixin
from eventflow.api.errors import ApplicationError
from eventflow.regional import format_money
from events.selectors import is_platform_admin, organizer_profile_id

from . import waitlist
from .models import (
    InventoryEntry,
    Order,
    OrderItem,
    Payment,
    Payout,
    PurchaseRequest,
    Refund,
    Ticket,
    WaitlistEntry,
    WebhookEvent,
)
from .payments import services as payment_services
from .payments import test as test_gateway
from .queue import position_of
from .selectors import payouts
from .services import order_cancel

_money = format_money  # in the currency's units and decimals: 25.00 EUR, 2500 JPY


def _short_code(code: str) -> str:
    """Enough of a ticket code to recognise it; the whole code admits its holder."""
    return f"{code[:8]}…"


class ScopedToOrganizerMixin:
    """Narrow a model admin to objects of the organizer's own events.

    ``event_path`` is the lookup from the model to its ``Event``. Objects
    outside the scope are simply not in ``get_queryset``, so the changelist
    leaves them out and their pages answer "doesn't exist", as for events.
    """

    event_path: str = "event"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if not is_platform_admin(request.user):
            qs = qs.filter(**{f"{self.event_path}__organizer_id": organizer_profile_id(request.user)})  # none: nothing
        return qs


class ReadOnlyAdminMixin:
    """View only, for everybody including superusers: no add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- The order page's inlines -------------------------------------------------------------


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.fields)


class OrderItemInline(ReadOnlyTabularInline):
    model = OrderItem
    fields = ["ticket_type_name", "quantity", "unit_price", "subtotal"]
    verbose_name = _("item")
    verbose_name_plural = _("items")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderItem]:
        return super().get_queryset(request).select_related("ticket_type", "order")

    @admin.display(description=_("ticket type"))
    def ticket_type_name(self, obj: OrderItem) -> str:
        return obj.ticket_type.name

    @admin.display(description=_("unit price"))
    def unit_price(self, obj: OrderItem) -> str:
        return _money(obj.unit_price_cents, obj.order.currency)

    @admin.display(description=_("subtotal"))
    def subtotal(self, obj: OrderItem) -> str:
        return _money(obj.subtotal_cents, obj.order.currency)


class TicketInline(ReadOnlyTabularInline):
    model = Ticket
    fields = ["short_code", "ticket_type_name", "holder_email", "status", "issued_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return super().get_queryset(request).select_related("ticket_type", "holder")

    @admin.display(description=_("code"))
    def short_code(self, obj: Ticket) -> str:
        return _short_code(obj.code)

    @admin.display(description=_("ticket type"))
    def ticket_type_name(self, obj: Ticket) -> str:
        return obj.ticket_type.name

    @admin.display(description=_("holder"))
    def holder_email(self, obj: Ticket) -> str:
        return obj.holder.email


class PaymentInline(ReadOnlyTabularInline):
    model = Payment
    fields = ["provider", "reference", "status", "amount", "fee", "needs_review", "refund_status", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).select_related("refund")

    @admin.display(description=_("amount"))
    def amount(self, obj: Payment) -> str:
        return _money(obj.amount_cents, obj.currency)

    @admin.display(description=_("platform fee"))
    def fee(self, obj: Payment) -> str:
        return _money(obj.fee_cents, obj.currency)

    @admin.display(description=_("refund"))
    def refund_status(self, obj: Payment) -> str:
        refund = getattr(obj, "refund", None)
        return refund.get_status_display() if refund else ""


class InventoryEntryInline(ReadOnlyTabularInline):
    """The order's lines in the append-only stock ledger: what it held, released, sold or refunded."""

    model = InventoryEntry
    fields = ["kind", "ticket_type_name", "quantity", "created_at"]
    verbose_name = _("inventory ledger entry")
    verbose_name_plural = _("inventory ledger")

    def get_queryset(self, request: HttpRequest) -> QuerySet[InventoryEntry]:
        return super().get_queryset(request).select_related("ticket_type").order_by("pk")

    @admin.display(description=_("ticket type"))
    def ticket_type_name(self, obj: InventoryEntry) -> str:
        return obj.ticket_type.name


# --- Orders -------------------------------------------------------------------------------


@admin.register(Order)
class OrderAdmin(SafeLookupsMixin, ScopedToOrganizerMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    inlines = [OrderItemInline, PaymentInline, TicketInline, InventoryEntryInline]
    list_display = ["short_id", "buyer_email", "event", "status", "total", "created_at", "expires_at"]
    list_filter = ["status", ("event", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["id", "buyer__email", "buyer__name", "event__title"]
    date_hierarchy = "created_at"
    list_select_related = ["buyer", "event"]
    ordering = ["-created_at", "-pk"]
    fieldsets = [
        (None, {"fields": ["id", "buyer", "event", "status"]}),
        (_("Money"), {"fields": ["subtotal", "discount", "discount_code", "total", "fee", "currency"]}),
        (
            _("Dates"),
            {"fields": ["created_at", "expires_at", "paid_at", "confirmation_sent_at", "closed_at", "updated_at"]},
        ),
    ]
    readonly_fields = [
        "id",
        "buyer",
        "event",
        "status",
        "subtotal",
        "discount",
        "discount_code",
        "total",
        "fee",
        "currency",
        "created_at",
        "expires_at",
        "paid_at",
        "confirmation_sent_at",
        "closed_at",
        "updated_at",
    ]
    actions = ["cancel_reservations", "refund_orders"]

    @admin.display(description=_("order"), ordering="pk")
    def short_id(self, obj: Order) -> str:
        return str(obj.pk)[:8]

    @admin.display(description=_("buyer"), ordering="buyer__email")
    def buyer_email(self, obj: Order) -> str:
        return obj.buyer.email

    @admin.display(description=_("total"), ordering="total_cents")
    def total(self, obj: Order) -> str:
        return _money(obj.total_cents, obj.currency)

    @admin.display(description=_("platform fee"))
    def fee(self, obj: Order) -> str:
        return _money(obj.fee_cents, obj.currency)

    @admin.display(description=_("list price"))
    def subtotal(self, obj: Order) -> str:
        return _money(obj.subtotal_cents, obj.currency)

    @admin.display(description=_("discount"))
    def discount(self, obj: Order) -> str:
        return _money(obj.discount_cents, obj.currency)

    # --- Cancelling reservations through the service -----------------------------------

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Whoever may see orders may release the holds of those they see (the queryset is scoped)."""
        return self.has_view_permission(request)

    @admin.action(description=_("Cancel selected reservations"), permissions=["cancel"])
    def cancel_reservations(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """Each order in its own transaction: one refusal (already paid, expired meanwhile) does
        not undo the others, and each is reported so the user knows what happened."""
        orders = list(queryset.order_by("created_at", "pk"))
        for order in orders:
            if order.status == Order.Status.PAID:
                self.message_user(
                    request,
                    gettext("Order %(order)s is paid: use “Refund selected paid orders”.")
                    % {"order": str(order.pk)[:8]},
                    messages.ERROR,
                )
        _each(
            self,
            request,
            [order for order in orders if order.status != Order.Status.PAID],
            lambda order: order_cancel(order=order),
            failure=gettext("Could not cancel order %(object)s: %(error)s"),
            done=lambda count: ngettext(
                "%(count)d reservation was cancelled; its tickets are back on sale.",
                "%(count)d reservations were cancelled; their tickets are back on sale.",
                count,
            ),
        )

    @admin.action(description=_("Refund selected paid orders"), permissions=["cancel"])
    def refund_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """The organizer's goodwill refund, whatever the event's refund policy: tickets void, stock
        back on sale, money back through the order's payment provider (the API's refund service)."""
        _each(
            self,
            request,
            queryset.order_by("created_at", "pk"),
            lambda order: payment_services.order_refund(order=order, reason=Refund.Reason.STAFF, by_policy=False),
            failure=gettext("Could not refund order %(object)s: %(error)s"),
            done=lambda count: ngettext(
                "%(count)d order was refunded; its tickets are void and back on sale.",
                "%(count)d orders were refunded; their tickets are void and back on sale.",
                count,
            ),
        )


# --- Payments, refunds and webhooks, for platform admins -----------------------------------


class PlatformAdminOnlyMixin:
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform_admin(request.user) and super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_platform_admin(request.user)


def _each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable,
    action: Callable[[Any], Any],
    *,
    failure: str,
    done: Callable[[int], str],
) -> None:
    """Run ``action`` (a service) on each object in its own transaction: one refusal does not undo
    the others; each refusal is reported (``failure`` with ``object`` and ``error``), the rest together."""
    count = 0
    for obj in objects:
        try:
            action(obj)
        except ApplicationError as exc:
            name = str(obj.pk)[:8] if isinstance(obj, Order) else str(obj)
            modeladmin.message_user(request, failure % {"object": name, "error": exc.detail}, messages.ERROR)
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done(count) % {"count": count}, messages.SUCCESS)


@admin.register(Payment)
class PaymentAdmin(PlatformAdminOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "order", "provider", "status", "amount", "fee", "needs_review", "created_at"]
    list_filter = ["status", "provider", "needs_review", "created_at"]
    search_fields = ["=id", "=order__id", "reference", "order__buyer__email"]
    list_select_related = ["order"]
    ordering = ["-created_at", "-pk"]
    fields = [
        "id",
        "order",
        "provider",
        "reference",
        "status",
        "amount",
        "fee",
        "needs_review",
        "review_note",
        "created_at",
        "succeeded_at",
    ]
    readonly_fields = fields
    actions = ["complete_test_payments", "fail_test_payments", "refund_payments"]

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, obj: Payment) -> str:
        return _money(obj.amount_cents, obj.currency)

    @admin.display(description=_("platform fee"))
    def fee(self, obj: Payment) -> str:
        return _money(obj.fee_cents, obj.currency)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if not settings.TEST_PAYMENTS_ENABLED:  # the simulated gateway's buttons exist only while it does
            actions.pop("complete_test_payments", None)
            actions.pop("fail_test_payments", None)
        return actions

    def has_staff_permission(self, request: HttpRequest) -> bool:
        return is_platform_admin(request.user)

    def _test_deliver(self, request: HttpRequest, queryset: QuerySet[Payment], *, succeeded: bool) -> None:
        outcomes = []
        for payment in queryset.filter(provider=test_gateway.TestProvider.name).order_by("created_at"):
            result = test_gateway.deliver(payment, succeeded=succeeded)
            outcomes.append(f"{str(payment.pk)[:8]}: {result.outcome}")
        skipped = queryset.exclude(provider=test_gateway.TestProvider.name).count()
        if outcomes:
            self.message_user(request, gettext("Webhooks delivered: %s") % ", ".join(outcomes), messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d payment is not a test payment and was left alone.",
                    "%(count)d payments are not test payments and were left alone.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Test gateway: complete the payment"), permissions=["staff"])
    def complete_test_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._test_deliver(request, queryset, succeeded=True)

    @admin.action(description=_("Test gateway: decline the payment"), permissions=["staff"])
    def fail_test_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._test_deliver(request, queryset, succeeded=False)

    @admin.action(description=_("Refund selected payments that paid for nothing"), permissions=["staff"])
    def refund_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda payment: payment_services.payment_refund(payment=payment),
            failure=gettext("%(object)s: %(error)s"),
            done=lambda count: ngettext(
                "%(count)d payment is being refunded.", "%(count)d payments are being refunded.", count
            ),
        )


@admin.register(Refund)
class RefundAdmin(PlatformAdminOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "payment", "status", "reason", "amount", "attempts", "created_at", "completed_at"]
    list_filter = ["status", "reason", "created_at"]
    search_fields = ["=id", "=payment__order__id", "reference"]
    list_select_related = ["payment"]
    ordering = ["-created_at", "-pk"]
    fields = [
        "id",
        "payment",
        "status",
        "reason",
        "amount",
        "reference",
        "attempts",
        "last_error",
        "created_at",
        "completed_at",
    ]
    readonly_fields = fields
    actions = ["retry_refunds"]

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, obj: Refund) -> str:
        return _money(obj.amount_cents, obj.payment.currency)

    def has_staff_permission(self, request: HttpRequest) -> bool:
        return is_platform_admin(request.user)

    @admin.action(description=_("Retry selected failed refunds"), permissions=["staff"])
    def retry_refunds(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda refund: payment_services.refund_retry(refund=refund),
            failure=gettext("%(object)s: %(error)s"),
            done=lambda count: ngettext(
                "%(count)d refund was sent again.", "%(count)d refunds were sent again.", count
            ),
        )


@admin.register(WebhookEvent)
class WebhookEventAdmin(PlatformAdminOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_id", "provider", "kind", "outcome", "payment", "received_at"]
    list_filter = ["provider", "kind", "outcome", "received_at"]
    search_fields = ["event_id", "=payment__id"]
    ordering = ["-received_at", "-pk"]
    fields = ["provider", "event_id", "kind", "outcome", "payment", "payload", "received_at"]
    readonly_fields = fields


@admin.register(Payout)
class PayoutAdmin(PlatformAdminOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Net revenue owed per organizer and currency: gross - platform fees - refunds (GET /admin/payouts)."""

    def changelist_view(self, request: HttpRequest, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = [
            {
                **row,
                "gross": _money(row["gross_cents"], row["currency"]),
                "discounts": _money(row["discounts_cents"], row["currency"]),
                "fees": _money(row["fees_cents"], row["currency"]),
                "refunds": _money(row["refunds_cents"], row["currency"]),
                "net": _money(row["net_cents"], row["currency"]),
            }
            for row in payouts()
        ]
        context = {**self.admin_site.each_context(request), "title": _("Payouts"), "rows": rows, "opts": self.opts}
        return TemplateResponse(request, "admin/orders/payouts.html", context)


# --- Tickets ------------------------------------------------------------------------------


@admin.register(Ticket)
class TicketAdmin(SafeLookupsMixin, ScopedToOrganizerMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    event_path = "order__event"
    list_display = ["short_code", "event_title", "ticket_type_name", "holder_email", "status", "issued_at"]
    list_filter = ["status", ("ticket_type__event", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "holder__email"]
    list_select_related = ["ticket_type__event", "holder"]
    ordering = ["-issued_at", "-pk"]
    fields = ["code", "order", "event_title", "ticket_type_name", "holder", "status", "issued_at", "transferred_from"]
    readonly_fields = fields

    @admin.display(description=_("code"))
    def short_code(self, obj: Ticket) -> str:
        return _short_code(obj.code)

    @admin.display(description=_("event"), ordering="ticket_type__event__title")
    def event_title(self, obj: Ticket) -> str:
        return obj.ticket_type.event.title

    @admin.display(description=_("ticket type"), ordering="ticket_type__name")
    def ticket_type_name(self, obj: Ticket) -> str:
        return obj.ticket_type.name

    @admin.display(description=_("holder"), ordering="holder__email")
    def holder_email(self, obj: Ticket) -> str:
        return obj.holder.email


# --- The queued on-sale -------------------------------------------------------------------------


@admin.register(PurchaseRequest)
class PurchaseRequestAdmin(SafeLookupsMixin, ScopedToOrganizerMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The line of a high-demand event and its outcomes, read-only: the workers answer every request
    (``orders.queue``); an organizer watches their own events' lines."""

    list_display = ["seq", "event", "buyer_email", "status", "lines", "error_code", "created_at", "processed_at"]
    list_filter = ["status", ("event", admin.RelatedOnlyFieldListFilter), "error_code"]
    search_fields = ["=id", "buyer__email", "event__title"]
    list_select_related = ["buyer", "event"]
    ordering = ["event", "seq"]
    fields = [
        "id",
        "event",
        "seq",
        "position",
        "buyer",
        "lines",
        "status",
        "order",
        "error_code",
        "error_detail",
        "error_extra",
        "created_at",
        "processed_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("buyer"), ordering="buyer__email")
    def buyer_email(self, obj: PurchaseRequest) -> str:
        return obj.buyer.email

    @admin.display(description=_("requests ahead"))
    def position(self, obj: PurchaseRequest) -> int | None:
        return position_of(obj)


# --- The ledger, for platform admins ------------------------------------------------------


@admin.register(InventoryEntry)
class InventoryEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every stock movement, for platform admins tracing a drift ``check_inventory`` reports.
    Organizers see their orders' entries on the order page."""

    list_display = ["pk", "created_at", "kind", "ticket_type", "quantity", "order"]
    list_filter = ["kind", "created_at"]
    search_fields = ["=order__id", "ticket_type__name", "ticket_type__event__title"]
    list_select_related = ["ticket_type__event", "order"]
    ordering = ["-pk"]
    fields = ["kind", "ticket_type", "quantity", "order", "created_at"]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: InventoryEntry | None = None) -> bool:
        return is_platform_admin(request.user) and super().has_view_permission(request, obj)


# --- The waiting list ---------------------------------------------------------------------------


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(SafeLookupsMixin, ScopedToOrganizerMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The waiting lists of the organizer's events, first come first (``orders.waitlist``). Entries
    move by themselves (offers, payments, expiry); the organizer may take one off the list with an
    action, which cancels an open offer like the API's ``DELETE``."""

    list_display = [
        "pk",
        "event",
        "ticket_type",
        "user_email",
        "quantity",
        "status",
        "position",
        "created_at",
        "offered_at",
        "offer_expires_at",
    ]
    list_filter = ["status", ("event", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "user__email", "event__title", "ticket_type__name"]
    list_select_related = ["user", "event", "ticket_type", "order"]
    ordering = ["created_at", "pk"]
    fields = [
        "id",
        "event",
        "ticket_type",
        "user",
        "quantity",
        "status",
        "position",
        "order",
        "created_at",
        "offered_at",
        "offer_notified_at",
        "closed_at",
    ]
    readonly_fields = fields
    actions = ["remove_entries"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WaitlistEntry]:
        return waitlist.with_position(super().get_queryset(request))

    @admin.display(description=_("buyer"), ordering="user__email")
    def user_email(self, obj: WaitlistEntry) -> str:
        return obj.user.email

    @admin.display(description=_("place in line"), ordering="position")
    def position(self, obj: WaitlistEntry) -> int | None:
        return obj.position

    @admin.display(description=_("offer expires at"))
    def offer_expires_at(self, obj: WaitlistEntry):
        return obj.order.expires_at if obj.order_id and obj.status == WaitlistEntry.Status.OFFERED else None

    def has_remove_permission(self, request: HttpRequest) -> bool:
        """Whoever may see the entries may take those they see off the list (the queryset is scoped)."""
        return self.has_view_permission(request)

    @admin.action(description=_("Remove selected entries from the waiting list"), permissions=["remove"])
    def remove_entries(self, request: HttpRequest, queryset: QuerySet[WaitlistEntry]) -> None:
        _each(
            self,
            request,
            queryset.order_by("created_at", "pk"),
            lambda entry: waitlist.waitlist_remove(entry=entry),
            failure=gettext("Could not remove entry %(object)s: %(error)s"),
            done=lambda count: ngettext(
                "%(count)d entry was removed from the waiting list.",
                "%(count)d entries were removed from the waiting list.",
                count,
            ),
        )
