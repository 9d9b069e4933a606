"""Deleting an account: the person's data goes, the accounting record stays.

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

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest

from .errors import OtpMissing, PasswordIncorrect
from .models import OrganizerProfile, TokenFamily, User
from .twofactor import is_enabled, otp_check, two_factor_remove

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
    logger.info(
        "Account %s anonymised%s", locked.pk, f" by staff user {acting_user.pk}" if acting_user is not None else ""
    )
    return locked
