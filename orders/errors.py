"""Errors the orders services raise; each has a stable code (see API.md)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from eventflow.api.errors import ApplicationError, Conflict, ServiceUnavailable


class SoldOut(Conflict):
    default_code = "sold_out"
    default_detail = _("Not enough tickets left.")


class SalesClosed(Conflict):
    default_code = "sales_closed"
    default_detail = _("Tickets of this type are not on sale right now.")


class LimitExceeded(Conflict):
    default_code = "limit_exceeded"
    default_detail = _("That is more tickets than one order may hold.")


class Busy(ServiceUnavailable):
    default_code = "busy"
    default_detail = _("Too many buyers at once for these tickets. Retry in a moment.")

    def __init__(self) -> None:
        super().__init__(retry_after=1)


class OrderNotCancellable(Conflict):
    default_code = "order_not_cancellable"
    default_detail = _("Only reserved orders can be cancelled.")


class OrderNotPayable(Conflict):
    default_code = "order_not_payable"
    default_detail = _("Only a reserved order can be paid; this one is expired, cancelled or paid already.")


class NotRefundable(Conflict):
    default_code = "not_refundable"
    default_detail = _("This order is paid and cannot be refunded here.")


class IdempotencyKeyReused(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = _("This Idempotency-Key was already used with a different request body.")


class IdempotencyInProgress(Conflict):
    default_code = "idempotency_in_progress"
    default_detail = _("A request with this Idempotency-Key is still being processed. Retry shortly.")

    def __init__(self) -> None:
        super().__init__()
        self.wait = 1  # sent as Retry-After


class PaymentProviderUnavailable(ServiceUnavailable):
    default_code = "payment_provider_unavailable"
    default_detail = _("The payment provider could not be reached. Retry in a moment with the same Idempotency-Key.")

    def __init__(self) -> None:
        super().__init__(retry_after=5)


class InvalidWebhookSignature(ApplicationError):
    default_code = "invalid_signature"
    default_detail = _("The webhook's signature is missing, wrong or too old.")


class PaymentUnknown(Conflict):
    """Answered non-2xx on purpose: the provider delivers the event again later."""

    default_code = "payment_unknown"
    default_detail = _("No payment matches this event yet; deliver it again later.")


class OrderNotPaid(Conflict):
    default_code = "order_not_paid"
    default_detail = _("This order has no valid tickets: tickets are issued once it is paid.")


class TicketVoid(Conflict):
    default_code = "ticket_void"
    default_detail = _("This ticket is void: it was refunded, cancelled or transferred.")


class AlreadyQueued(Conflict):
    """A buyer has one queued purchase per event; a different second one waits for the first's outcome."""

    default_code = "already_queued"
    default_detail = _("You already have a purchase waiting in line for this event; wait for its outcome.")


# --- The waiting list (orders.waitlist) --------------------------------------------------------


class NotSoldOut(Conflict):
    default_code = "not_sold_out"
    default_detail = _("Tickets of this type are on sale: buy them instead of joining the waiting list.")


class AlreadyOnWaitlist(Conflict):
    default_code = "already_on_waitlist"
    default_detail = _("You are already on the waiting list for this ticket type.")


class WaitlistEntryClosed(Conflict):
    default_code = "waitlist_entry_closed"
    default_detail = _("This waiting list entry is no longer on the list.")


class AlreadyCheckedIn(Conflict):
    """The body carries the first scan: ``checked_in_at`` and ``gate``."""

    default_code = "already_checked_in"
    default_detail = _("This ticket was already checked in.")


class TransferClosed(Conflict):
    default_code = "transfer_closed"
    default_detail = _("Tickets of this event can no longer be transferred.")
