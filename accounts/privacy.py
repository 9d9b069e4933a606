"""Privacy: what EventFlow holds about a person, handed over (export) or removed (deletion).

## Export

Personal data export (data portability): everything EventFlow holds about one account, as JSON.

The same document answers ``GET /users/me/export`` and a staff member's data request in the
admin (``UserAdmin``'s "Export personal data" action), so what a user downloads and what staff
hand over never differ.

Each section is one read (two or three with its prefetches), whatever the account's history, so
the cost is pinned (``test_export_query_count_does_not_grow_with_history``). A new kind of
personal data gets a section here: a read in :func:`personal_data` and a serializer field in
:class:`PersonalDataSerializer`; the profile's fields (2FA status, email verification, ...) go in
:class:`ProfileExportSerializer`.

Left out on purpose: secrets (password hash, refresh token ids, payment client secrets, TOTP
secrets), other people's data (who scanned a ticket, to whom a ticket was transferred) and
short-lived technical records (idempotency records, rate-limit counters).

## Deletion

Deleting an account: the person's data goes, the accounting record stays.

``DELETE /users/me`` (with the password, and a 2FA code when 2FA is on) and the admin
action "Delete personal data (data request)" both end in :func:`account_anonymise`:

- the row stays (orders, payments and tickets point at it, and must: they are the
  accounting of money that moved), but what identifies the person is gone: the email
  becomes ``deleted-<id>@invalid``, the name is blank, the password unusable, 2FA and its
  recovery codes deleted, staff rights, groups and permissions removed;
- the account is inactive, so it cannot sign in, and every session ends (its refresh
  token families end now, its access tokens are void once this commits: accounts.revocation);
- its live orders and tickets are closed out by the orders app (orders.account_closure:
  reservations cancelled, paid orders of future events refunded where the refund policy
  allows, tickets of future events void); its waiting-list entries close (the orders app's
  receiver for deactivated accounts);
- an organizer profile is kept, with its events and payouts (a business record the
  platform owes money against); a contact email that was the account's own is replaced.
  Staff settle what remains of an organizer's business by hand.

It is one transaction: a refund that cannot lock its order now (503 busy) leaves the
account as it was, to be tried again.
"""

from __future__ import annotations

import logging

from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from checkin.models import CheckInStaff
from orders.models import Order, OrderItem, Payment, PurchaseRequest, Ticket, WaitlistEntry

from .errors import OtpMissing, PasswordIncorrect
from .models import OrganizerProfile, TokenFamily, User
from .signals import account_anonymised
from .twofactor import is_enabled, otp_check, two_factor_remove

# Bumped when a section changes shape (not when one is added), for whoever imports these files.
FORMAT_VERSION = 1


def personal_data(*, user: User) -> dict:
    """Read every section of ``user``'s personal data (a fixed number of queries)."""
    user = User.objects.select_related("two_factor").get(
        pk=user.pk
    )  # every field: the API's user is built from the token, deferred
    tickets = list(
        Ticket.objects.filter(holder=user)
        .select_related("ticket_type__event", "seat", "transferred_to", "check_in__event", "order")
        .order_by("issued_at", "id")
    )
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now(),
        "profile": user,
        "organizer_profile": OrganizerProfile.objects.filter(user=user).first(),
        "orders": Order.objects.filter(buyer=user)
        .select_related("event", "discount_code")
        .prefetch_related(
            Prefetch("items", OrderItem.objects.select_related("ticket_type").order_by("id")),
            Prefetch("payments", Payment.objects.select_related("refund").order_by("created_at")),
        )
        .order_by("created_at"),
        "tickets": tickets,
        "check_ins": [check_in for ticket in tickets if (check_in := getattr(ticket, "check_in", None))],
        "waitlist_entries": WaitlistEntry.objects.filter(user=user)
        .select_related("event", "ticket_type")
        .order_by("created_at", "id"),
        "purchase_requests": PurchaseRequest.objects.filter(buyer=user).select_related("event").order_by("created_at"),
        "sessions": TokenFamily.objects.filter(user=user).order_by("created_at"),
        "check_in_roles": CheckInStaff.objects.filter(user=user).select_related("organizer").order_by("created_at"),
    }


def personal_data_json(*, user: User) -> bytes:
    """The export as the bytes of a JSON document (the admin's download; the API renders the same data)."""
    return JSONRenderer().render(PersonalDataSerializer(personal_data(user=user), context={"user": user}).data)


def export_filename(user: User) -> str:
    return f"eventflow-personal-data-{user.pk}-{timezone.now():%Y%m%d}.json"


# --- The document ---------------------------------------------------------------------------


class ProfileExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    role = serializers.CharField()
    is_active = serializers.BooleanField()
    is_staff = serializers.BooleanField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)
    email_verified_at = serializers.DateTimeField(allow_null=True)
    two_factor_enabled = serializers.SerializerMethodField()

    def get_two_factor_enabled(self, user: User) -> bool:
        try:
            return user.two_factor.confirmed_at is not None  # read with the user (select_related)
        except User.two_factor.RelatedObjectDoesNotExist:
            return False


class OrganizerProfileExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    slug = serializers.CharField()
    contact_email = serializers.EmailField()
    timezone = serializers.CharField()
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EventRefExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    starts_at = serializers.DateTimeField()
    venue_name = serializers.CharField()
    city = serializers.CharField()


class OrderItemExportSerializer(serializers.Serializer):
    ticket_type = serializers.CharField(source="ticket_type.name")
    quantity = serializers.IntegerField()
    unit_price_cents = serializers.IntegerField()


class RefundExportSerializer(serializers.Serializer):
    amount_cents = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class PaymentExportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    provider = serializers.CharField()
    reference = serializers.CharField(help_text="The payment's id at the provider.")
    amount_cents = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    refund = serializers.SerializerMethodField()

    @extend_schema_field(RefundExportSerializer(allow_null=True))
    def get_refund(self, payment: Payment) -> dict | None:
        refund = getattr(payment, "refund", None)  # a missing reverse one-to-one is an AttributeError too
        return RefundExportSerializer(refund).data if refund is not None else None


class OrderExportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    event = EventRefExportSerializer()
    status = serializers.CharField()
    total_cents = serializers.IntegerField()
    discount_cents = serializers.IntegerField()
    currency = serializers.CharField()
    discount_code = serializers.CharField(source="discount_code.code", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    items = OrderItemExportSerializer(many=True)
    payments = PaymentExportSerializer(many=True)


class TicketExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.SerializerMethodField(help_text="Your order; null for a ticket somebody else bought.")
    event = EventRefExportSerializer(source="ticket_type.event")
    ticket_type = serializers.CharField(source="ticket_type.name")
    seat = serializers.SerializerMethodField()
    code = serializers.CharField(help_text="What the door scanner reads.")
    status = serializers.CharField()
    issued_at = serializers.DateTimeField()
    transferred_in = serializers.SerializerMethodField(help_text="Given to you by another holder.")
    transferred_out_at = serializers.SerializerMethodField(help_text="When you gave it to somebody else.")

    def get_order(self, ticket: Ticket) -> str | None:
        return str(ticket.order_id) if ticket.order.buyer_id == self.context["user"].pk else None

    def get_seat(self, ticket: Ticket) -> str | None:
        seat = ticket.seat
        return " ".join(part for part in (seat.section, seat.row, seat.number) if part) if seat else None

    def get_transferred_in(self, ticket: Ticket) -> bool:
        return ticket.transferred_from_id is not None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_transferred_out_at(self, ticket: Ticket) -> str | None:
        successor = getattr(ticket, "transferred_to", None)
        return serializers.DateTimeField().to_representation(successor.issued_at) if successor else None


class CheckInExportSerializer(serializers.Serializer):
    ticket = serializers.IntegerField(source="ticket_id")
    event = serializers.IntegerField(source="event_id")
    scanned_at = serializers.DateTimeField()
    gate = serializers.CharField()
    source = serializers.CharField()


class WaitlistEntryExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = EventRefExportSerializer()
    ticket_type = serializers.CharField(source="ticket_type.name")
    quantity = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    offered_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    order = serializers.UUIDField(source="order_id", allow_null=True)


class PurchaseRequestExportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    event = EventRefExportSerializer()
    lines = serializers.JSONField()
    discount_code = serializers.CharField()
    status = serializers.CharField()
    error_code = serializers.CharField()
    created_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)
    order = serializers.UUIDField(source="order_id", allow_null=True)


class SessionExportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    user_agent = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()


class CheckInRoleExportSerializer(serializers.Serializer):
    organizer = serializers.CharField(source="organizer.display_name")
    created_at = serializers.DateTimeField()


class PersonalDataSerializer(serializers.Serializer):
    format_version = serializers.IntegerField()
    exported_at = serializers.DateTimeField()
    profile = ProfileExportSerializer()
    organizer_profile = OrganizerProfileExportSerializer(allow_null=True)
    orders = OrderExportSerializer(many=True, help_text="Orders you placed; money in minor units.")
    tickets = TicketExportSerializer(many=True, help_text="Tickets you hold or held, transferred ones included.")
    check_ins = CheckInExportSerializer(many=True, help_text="Admissions with your tickets.")
    waitlist_entries = WaitlistEntryExportSerializer(many=True)
    purchase_requests = PurchaseRequestExportSerializer(many=True, help_text="Queued purchases (high demand).")
    sessions = SessionExportSerializer(many=True, help_text="Sign-ins (refresh-token sessions).")
    check_in_roles = CheckInRoleExportSerializer(many=True, help_text="Organizers you scan tickets for.")


# --- Deletion --------------------------------------------------------------------------------

logger = logging.getLogger(__name__)


def anonymised_email(user_id: int) -> str:
    return f"deleted-{user_id}@invalid"


def is_anonymised(user: User) -> bool:
    return user.email == anonymised_email(user.pk) and not user.is_active


def account_delete(*, request: HttpRequest | None, user: User, password: str, otp: str | None = None) -> None:
    """The account's owner deletes it: password (counted by django-axes like a login), then the
    2FA code when 2FA is on, then :func:`account_anonymise`."""
    if authenticate(request, email=user.email, password=password) is None:
        raise PasswordIncorrect()
    if is_enabled(user):
        if not otp:
            raise OtpMissing()
        otp_check(request=request, user=user, otp=otp)
    account_anonymise(user=user)


def account_anonymise(*, user: User, acting_user: User | None = None) -> User:
    """Delete ``user``'s personal data and close their account (see the module). Idempotent."""
    from orders.account_closure import account_orders_close  # orders builds on accounts

    with transaction.atomic():
        # NO KEY UPDATE: two deletions of one account queue here, but a purchase committing meanwhile
        # (its order row's key-share lock on the user) is not blocked while the refunds below wait
        # for its ticket types, which could otherwise deadlock. The save at the end takes the rest.
        locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
        if is_anonymised(locked):
            return locked
        old_email = locked.email
        account_orders_close(user_id=locked.pk)
        TokenFamily.objects.end_all(user=locked, reason=TokenFamily.EndReason.REVOKED)
        TokenFamily.objects.filter(user=locked).update(user_agent="")  # which devices they used
        # Failed logins by this address (django-axes keeps them per address until a success there).
        AccessAttempt.objects.filter(username__iexact=old_email).delete()
        two_factor_remove(user_id=locked.pk)
        OrganizerProfile.objects.filter(user=locked, contact_email__iexact=old_email).update(
            contact_email=anonymised_email(locked.pk)
        )
        locked.email = anonymised_email(locked.pk)
        locked.name = ""
        locked.set_unusable_password()
        locked.is_active = False
        locked.is_staff = False
        locked.is_superuser = False
        locked.last_login = None
        # The save voids every access token once it commits (User.save), and tells the orders app's
        # receiver, which closes the account's waiting-list entries.
        locked.save()
        locked.groups.clear()
        locked.user_permissions.clear()
        # Apps that keep copies of the person's details elsewhere (webhook payloads) forget them now,
        # in this transaction.
        account_anonymised.send(sender=User, user_id=locked.pk, old_email=old_email, new_email=locked.email)
    logger.info(
        "Account %s anonymised%s", locked.pk, f" by staff user {acting_user.pk}" if acting_user is not None else ""
    )
    return locked
