"""Setting a password with a code sent by email: a forgotten password, or an invited account's first one.

An account can be created for somebody who never registered: a ticket transferred to an
email address without an account (``orders.transfers``), or check-in staff an organizer
names. :func:`user_invite` creates it without a usable password; the email that tells the
person about it carries a one-time code, and ``POST /auth/password/reset/confirm``
``{email, code, new_password}`` sets the password (which also proves they own the address).

Codes are Django's password-reset tokens: an HMAC of the account's id, password hash,
last login and a timestamp, so nothing is stored, a code stops working once a password is
set with it (the hash changes), and it expires after ``PASSWORD_RESET_TIMEOUT`` seconds.
``POST /auth/password/reset`` emails a fresh one at any time (always 202: nobody learns
whether an address has an account).
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from eventflow.api.errors import ApplicationError

from .models import User, normalize_email

logger = logging.getLogger(__name__)

MAX_CODE_LENGTH = 100


class CodeInvalid(ApplicationError):
    default_code = "code_invalid"
    default_detail = _("This code is wrong, used or expired. Ask for a new one with POST /auth/password/reset.")

    def __init__(self) -> None:
        super().__init__(field="code")


def password_code(user: User) -> str:
    """A one-time code that lets ``user`` set a password (valid ``PASSWORD_RESET_TIMEOUT`` seconds)."""
    return default_token_generator.make_token(user)


def user_invite(*, email: str) -> tuple[User, bool]:
    """The account for ``email``, created without a usable password when there is none.

    Returns ``(user, created)``. Call it inside the transaction that gives the account
    something (a ticket, a role); the caller's email to the person carries
    :func:`password_code` when ``user.has_usable_password()`` is false.
    """
    email = normalize_email(email)
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, False
    try:
        with transaction.atomic():  # a savepoint: a concurrent invitation or registration may win
            return User.objects.create_user(email=email, password=None, role=User.Role.ATTENDEE), True
    except IntegrityError:
        return User.objects.get(email=email), False


def password_reset_request(*, email: str) -> None:
    """Email a code to set a new password, if an active account has this address; silent otherwise."""
    user = User.objects.filter(email=normalize_email(email), is_active=True).only("pk").first()
    if user is None:
        return
    from .tasks import send_password_code  # tasks import this module

    transaction.on_commit(partial(send_password_code.delay, user.pk), robust=True)


def password_code_send(*, user_id: int) -> bool:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return False
    context = {"user": user, "code": password_code(user), "invited": not user.has_usable_password()}
    EmailMessage(
        subject=" ".join(render_to_string("accounts/email/password_code_subject.txt", context).split()),
        body=render_to_string("accounts/email/password_code.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    ).send()
    return True


def password_reset_confirm(*, email: str, code: str, new_password: str) -> User:
    """Set the password of the account ``email`` with a code emailed to it; every session ends."""
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None or len(code) > MAX_CODE_LENGTH or not default_token_generator.check_token(user, code):
        raise CodeInvalid()
    try:
        password_validation.validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="new_password") from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])  # ends the account's sessions (User.save)
    logger.info("User %s set a password with an emailed code", user.pk)
    return user
