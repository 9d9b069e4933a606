"""Email verification: the owner of an account proves they read its address.

Registration emails a one-time code (``accounts.codes``, valid ``EMAIL_VERIFICATION_CODE_HOURS``);
``POST /auth/email/verify`` ``{email, code}`` records ``User.email_verified_at``. Setting a
password with an emailed code (an invitation, a reset) proves it too.

With ``REQUIRE_EMAIL_VERIFICATION_TO_BUY`` on, ``POST /orders`` refuses an unverified buyer
(403 ``email_not_verified``). The purchase must not pay a user read for that: tokens issued to
a verified account carry the claim ``ev`` (``accounts.services``), and the check reads the
token. A user who has just verified gets the claim with their next refresh (``POST
/auth/refresh``); until then, their older access token still says unverified.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import status

from eventflow.api.errors import ApplicationError

from . import codes
from .models import EmailCode, User, normalize_email
from .passwords import CodeInvalid

logger = logging.getLogger(__name__)

VERIFIED_CLAIM = "ev"


class EmailNotVerified(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "email_not_verified"
    default_detail = _(
        "Verify your email address first: send the emailed code to POST /auth/email/verify, then refresh "
        "your token. POST /auth/email/verify/resend emails a new code."
    )


CODE_INVALID_DETAIL = _("This code is wrong, used or expired. Ask for a new one with POST /auth/email/verify/resend.")


def email_verification_queue(*, user: User) -> None:
    """Email ``user`` a verification code once the current transaction commits."""
    from .tasks import send_email_verification  # tasks import this module

    transaction.on_commit(partial(send_email_verification.delay, user.pk), robust=True)


def email_verification_send(*, user_id: int) -> bool:
    """Email a fresh code to an active, unverified account; False when there is nothing to verify."""
    user = User.objects.filter(pk=user_id, is_active=True, email_verified_at__isnull=True).first()
    if user is None or not user.email:
        return False
    valid_for = timedelta(hours=settings.EMAIL_VERIFICATION_CODE_HOURS)
    code = codes.code_issue(user=user, purpose=EmailCode.Purpose.VERIFY_EMAIL, valid_for=valid_for)
    context = {"user": user, "code": code, "hours": settings.EMAIL_VERIFICATION_CODE_HOURS}
    EmailMessage(
        subject=" ".join(render_to_string("accounts/email/verify_email_subject.txt", context).split()),
        body=render_to_string("accounts/email/verify_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    ).send()
    return True


def email_verification_resend_request(*, email: str) -> None:
    """Queue a new code for ``email``: the same work whether or not an unverified account has it."""
    from .tasks import resend_email_verification

    transaction.on_commit(partial(resend_email_verification.delay, normalize_email(email)), robust=True)


def email_verification_resend(*, email: str) -> bool:
    user_id = (
        User.objects.filter(email=normalize_email(email), is_active=True, email_verified_at__isnull=True)
        .values_list("pk", flat=True)
        .first()
    )
    return user_id is not None and email_verification_send(user_id=user_id)


def email_verify(*, email: str, code: str) -> User:
    """Record that the owner of ``email`` read the code sent there. A verified account stays verified."""
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        codes.dummy_check(code)
        raise CodeInvalid(CODE_INVALID_DETAIL)
    with transaction.atomic():
        spent = codes.code_use(user=user, purpose=EmailCode.Purpose.VERIFY_EMAIL, code=code)
        if spent and user.email_verified_at is None:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
    if not spent:  # after the commit: a wrong try stays counted
        raise CodeInvalid(CODE_INVALID_DETAIL)
    logger.info("User %s verified their email address", user.pk)
    return user


def require_verified_email(request) -> None:
    """403 ``email_not_verified`` unless the caller's access token says the address is verified.

    Reads the token, not the user's row: the purchase adds no SQL statement. A request
    authenticated otherwise (no token claims) is answered from the row."""
    token = request.auth
    if token is not None and hasattr(token, "get"):
        if token.get(VERIFIED_CLAIM):
            return
    elif getattr(request.user, "email_verified_at", None) is not None:
        return
    raise EmailNotVerified()
