"""Setting a password with a code sent by email (a forgotten password, an invited account's first
one), and changing it with the old one.

An account can be created for somebody who never registered: a ticket transferred to an
email address without an account (``orders.transfers``), or check-in staff an organizer
names. :func:`user_invite` creates it without a usable password; the email that tells the
person about it carries a one-time code (:func:`invite_code`, valid ``INVITE_CODE_HOURS``),
and ``POST /auth/password/reset/confirm`` ``{email, code, new_password}`` sets the password
(which also proves they own the address, so it counts as verifying it).

Codes are stored hashed (``accounts.codes``): one works once, for ``PASSWORD_RESET_CODE_MINUTES``
after ``POST /auth/password/reset`` emails it (always 202: nobody learns whether an address has
an account), not after 5 wrong tries, and a newer code supersedes it. Setting a password with
one ends every session of the account (``User.save``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from eventflow.api.errors import ApplicationError

from . import codes
from .models import EmailCode, User, normalize_email

logger = logging.getLogger(__name__)


class CodeInvalid(ApplicationError):
    default_code = "code_invalid"
    default_detail = _("This code is wrong, used or expired. Ask for a new one with POST /auth/password/reset.")

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, field="code")


class InvalidPassword(ApplicationError):
    default_code = "invalid_password"
    default_detail = _("This is not your current password.")

    def __init__(self) -> None:
        super().__init__(field="old_password")


def _reset_validity() -> timedelta:
    return timedelta(minutes=settings.PASSWORD_RESET_CODE_MINUTES)


def invite_code(user: User) -> str:
    """A code that lets an invited ``user`` set their first password, valid ``INVITE_CODE_HOURS``
    (the person may open the email days later; a forgotten password's code lives minutes).

    Each call supersedes the code of an earlier email: the newest email's code is the one that works."""
    return codes.code_issue(
        user=user, purpose=EmailCode.Purpose.PASSWORD, valid_for=timedelta(hours=settings.INVITE_CODE_HOURS)
    )


def user_invite(*, email: str) -> tuple[User, bool]:
    """The account for ``email``, created without a usable password when there is none.

    Returns ``(user, created)``. Call it inside the transaction that gives the account
    something (a ticket, a role); the caller's email to the person carries
    :func:`invite_code` when ``user.has_usable_password()`` is false.
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
    """Email a code to set a new password, if an active account has this address; silent otherwise.

    The request does the same work either way (it queues the task, which looks the account up),
    so neither its answer nor its time tells whether the address has an account."""
    from .tasks import send_password_reset  # tasks import this module

    transaction.on_commit(partial(send_password_reset.delay, normalize_email(email)), robust=True)


def _password_code_email(user: User, code: str, valid_for: timedelta) -> None:
    context = {
        "user": user,
        "code": code,
        "invited": not user.has_usable_password(),
        "hours": int(valid_for.total_seconds() // 3600),
        "minutes": int(valid_for.total_seconds() // 60),
    }
    EmailMessage(
        subject=" ".join(render_to_string("accounts/email/password_code_subject.txt", context).split()),
        body=render_to_string("accounts/email/password_code.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    ).send()


def password_reset_send(*, email: str) -> bool:
    """Email a fresh reset code to the active account ``email``; False when there is none."""
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        return False
    valid_for = _reset_validity()
    _password_code_email(
        user, codes.code_issue(user=user, purpose=EmailCode.Purpose.PASSWORD, valid_for=valid_for), valid_for
    )
    return True


def password_code_send(*, user_id: int) -> bool:
    """Email an invited account (no password yet) the code to set its first one; a reset code otherwise."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return False
    if user.has_usable_password():
        valid_for = _reset_validity()
        code = codes.code_issue(user=user, purpose=EmailCode.Purpose.PASSWORD, valid_for=valid_for)
    else:
        valid_for, code = timedelta(hours=settings.INVITE_CODE_HOURS), invite_code(user)
    _password_code_email(user, code, valid_for)
    return True


def _validated(new_password: str, user: User) -> None:
    try:
        password_validation.validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="new_password") from exc


def password_reset_confirm(*, email: str, code: str, new_password: str) -> User:
    """Set the password of the account ``email`` with a code emailed to it; every session ends.

    The code is checked before the new password, so an address without an account and one
    with a wrong code answer alike; a right code with a refused password stays usable."""
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        codes.dummy_check(code)
        raise CodeInvalid()
    with transaction.atomic():
        spent = codes.code_use(user=user, purpose=EmailCode.Purpose.PASSWORD, code=code)
        if spent:
            _validated(new_password, user)  # raised inside: the code's use rolls back
            user.set_password(new_password)
            fields = ["password"]
            if user.email_verified_at is None:  # the code was read in this mailbox
                user.email_verified_at = timezone.now()
                fields.append("email_verified_at")
            user.save(update_fields=fields)  # ends the account's sessions (User.save)
    if not spent:  # after the commit: a wrong try stays counted
        raise CodeInvalid()
    logger.info("User %s set a password with an emailed code", user.pk)
    return user


def password_change(
    *, request: HttpRequest, user: User, old_password: str, new_password: str, session: str | None
) -> User:
    """Change the caller's password, proven by the old one; every other session ends.

    The old password is checked through ``authenticate`` so that wrong ones count towards
    the same lockout as the login's (django-axes: per account and client address).
    ``session`` is the caller's own session (the ``fam`` claim of their access token): it,
    and the access tokens it issued, keep working."""
    checked = authenticate(request, email=user.email, password=old_password)
    if checked is None or checked.pk != user.pk:
        raise InvalidPassword()
    _validated(new_password, checked)
    checked.set_password(new_password)
    checked._keep_session = session
    checked.save(update_fields=["password"])  # ends the other sessions (User.save)
    logger.info("User %s changed their password", checked.pk)
    return checked
