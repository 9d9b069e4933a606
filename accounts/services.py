"""Writes for accounts: registration, sessions (JWT) and organizer profiles."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from django.contrib.auth import authenticate, user_logged_in
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.utils import timezone as django_timezone
from django.utils.text import slugify
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from .errors import (
    EmailTaken,
    InvalidCredentials,
    OrganizerProfileExists,
    RefreshRejected,
    RefreshTokenInvalid,
    SlugTaken,
)
from .models import OrganizerProfile, TokenFamily, User, normalize_email
from .twofactor import login_second_factor
from .verification import VERIFIED_CLAIM, email_verification_queue

logger = logging.getLogger(__name__)

ORGANIZERS_GROUP_NAME = "Organizers"
# What an organizer may do in the admin back office, by app label. The admin
# classes narrow every permission to the organizer's own objects (the
# OrganizerProfile admin shows an organizer their own profile only, and never
# lets them change which user owns it).
ORGANIZER_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "accounts": ("view_organizerprofile", "change_organizerprofile"),
    "events": (
        "add_event",
        "change_event",
        "delete_event",
        "view_event",
        "add_tickettype",
        "change_tickettype",
        "delete_tickettype",
        "view_tickettype",
        "add_discountcode",
        "change_discountcode",
        "delete_discountcode",
        "view_discountcode",
        "add_seat",
        "delete_seat",
        "view_seat",
    ),
    "orders": (
        "view_order",
        "view_orderitem",
        "view_ticket",
        "view_inventoryentry",
        "view_purchaserequest",
        "view_waitlistentry",
    ),
    "checkin": ("view_checkin", "view_checkinstaff", "add_checkinstaff", "delete_checkinstaff"),
    # Outbound webhooks (issue 12): their endpoints, and their deliveries read-only (replay is an action).
    "webhooks": (
        "add_webhookendpoint",
        "change_webhookendpoint",
        "delete_webhookendpoint",
        "view_webhookendpoint",
        "view_webhookdelivery",
    ),
}


def user_register(*, email: str, password: str, name: str = "", email_verified: bool = False) -> User:
    """Create an attendee account. The role is never taken from the client.

    ``email_verified``: the address is known to be the person's (the demo data's made-up accounts),
    so no code is emailed; a registration through the API always proves it with the emailed code."""
    email = normalize_email(email)
    if User.objects.filter(email=email).exists():
        raise EmailTaken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email,
                password=password,
                name=name,
                role=User.Role.ATTENDEE,
                email_verified_at=django_timezone.now() if email_verified else None,
            )
    except IntegrityError as exc:  # a concurrent registration won the race
        raise EmailTaken() from exc
    if not email_verified:
        email_verification_queue(user=user)  # the code that verifies the address, once this commits
    return user


def user_login(*, request: HttpRequest, email: str, password: str, otp: str | None = None) -> User:
    """Check credentials; inactive accounts and wrong passwords look the same. An account with 2FA
    on also needs ``otp`` (accounts.twofactor): a wrong one counts as a failed login."""
    user = authenticate(request, email=normalize_email(email), password=password)
    if user is None:
        raise InvalidCredentials()
    login_second_factor(request=request, user=user, otp=otp)
    user_logged_in.send(sender=user.__class__, request=request, user=user)  # records last_login
    return user


# --- Sessions: refresh-token families ------------------------------------------------------

FAMILY_CLAIM = "fam"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _pair(family: TokenFamily, user: User) -> TokenPair:
    """A new refresh token of ``family`` (and an access token), recorded as the family's only valid one."""
    refresh = RefreshToken.for_user(user)
    refresh[FAMILY_CLAIM] = str(family.pk)  # copied into the access token too: it knows its session
    if user.email_verified_at is not None:
        # Checked by the purchase (accounts.verification) without reading the user's row.
        refresh[VERIFIED_CLAIM] = True
    family.current_jti = refresh[jwt_settings.JTI_CLAIM]
    family.expires_at = datetime.fromtimestamp(refresh["exp"], tz=UTC)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _user_agent(request: HttpRequest | None) -> str:
    return (request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:255]


def session_start(*, user: User, request: HttpRequest | None = None) -> TokenPair:
    """Sign ``user`` in: a new session (token family) and its first token pair."""
    family = TokenFamily(user=user, user_agent=_user_agent(request))
    pair = _pair(family, user)
    family.save()
    return pair


def _verified(refresh: str, error: type[Exception]) -> RefreshToken:
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise error() from exc
    if not token.get(FAMILY_CLAIM):  # not one of ours (or from before sessions existed)
        raise error()
    return token


def session_refresh(*, refresh: str, request: HttpRequest | None = None) -> TokenPair:
    """Rotate a refresh token: a new pair for its session; the presented token stops working.

    Presenting a token that was already rotated means two parties hold the
    session (one of them stole it): the whole family ends, so the successor
    the other party holds stops working too.
    """
    token = _verified(refresh, RefreshRejected)
    reused = False
    with transaction.atomic():
        family = (
            TokenFamily.objects.select_for_update()
            .select_related("user")
            .filter(pk=token[FAMILY_CLAIM], user_id=token.get(jwt_settings.USER_ID_CLAIM))
            .first()
        )
        if family is None or family.ended_at is not None or not family.user.is_active:
            raise RefreshRejected()  # ended, or its user was deactivated or deleted
        if family.current_jti != token[jwt_settings.JTI_CLAIM]:
            family.ended_at, family.end_reason = django_timezone.now(), TokenFamily.EndReason.REUSE
            family.save(update_fields=["ended_at", "end_reason"])
            reused = True
        else:
            pair = _pair(family, family.user)
            family.last_used_at = django_timezone.now()
            family.user_agent = _user_agent(request) or family.user_agent
            family.save(update_fields=["current_jti", "expires_at", "last_used_at", "user_agent"])
    if reused:  # raised after the commit, so the family stays ended
        logger.warning("Refresh token reuse: session %s of user %s ended", family.pk, family.user_id)
        raise RefreshRejected()
    return pair


def session_end(*, user: User, refresh: str) -> None:
    """Sign out: end the session the given refresh token belongs to (it must be the caller's).

    Its access tokens stop working at once too, as when the owner ends a session from the list."""
    from . import revocation

    token = _verified(refresh, RefreshTokenInvalid)
    if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(getattr(user, jwt_settings.USER_ID_FIELD)):
        raise RefreshTokenInvalid()
    ended = TokenFamily.objects.filter(pk=token[FAMILY_CLAIM], user=user, ended_at__isnull=True).update(
        ended_at=django_timezone.now(), end_reason=TokenFamily.EndReason.LOGOUT
    )
    if not ended:
        raise RefreshTokenInvalid()
    transaction.on_commit(partial(revocation.void_session, user.pk, str(token[FAMILY_CLAIM])))


def sessions_revoke(*, family_ids: list) -> int:
    """End the given sessions (staff): their refresh tokens, and their access tokens, stop working."""
    from . import revocation

    with transaction.atomic():
        live = list(
            TokenFamily.objects.select_for_update()
            .filter(pk__in=family_ids, ended_at__isnull=True)
            .values_list("pk", "user_id")
        )
        ended = TokenFamily.objects.filter(pk__in=[pk for pk, _user in live]).update(
            ended_at=django_timezone.now(), end_reason=TokenFamily.EndReason.REVOKED
        )
        for pk, user_id in live:
            transaction.on_commit(partial(revocation.void_session, user_id, str(pk)))
    return ended


# --- The owner's sessions: list and end (issue 13) ------------------------------------------


def session_revoke(*, user: User, session_id) -> None:
    """End one of ``user``'s live sessions (404 if not theirs or over): its refresh token stops
    working, and its access tokens at once too (the owner ends a session they do not trust)."""
    from . import revocation

    with transaction.atomic():
        ended = TokenFamily.objects.filter(pk=session_id, user=user, ended_at__isnull=True).update(
            ended_at=django_timezone.now(), end_reason=TokenFamily.EndReason.REVOKED
        )
        if not ended:
            raise Http404
        transaction.on_commit(partial(revocation.void_session, user.pk, str(session_id)))


def sessions_end_all(*, user: User) -> int:
    """Log out everywhere: every session of ``user`` ends, the caller's too, and every access
    token issued so far stops working at once (``accounts.revocation``)."""
    from . import revocation

    with transaction.atomic():
        ended = TokenFamily.objects.end_all(user=user, reason=TokenFamily.EndReason.REVOKED)
        transaction.on_commit(partial(revocation.void_tokens, user.pk))
    logger.info("User %s ended all %d of their sessions", user.pk, ended)
    return ended


def sessions_purge(*, older_than: datetime | None = None) -> int:
    """Forget sessions whose newest refresh token has expired (before ``older_than``, default now)."""
    deleted, _per_model = TokenFamily.objects.filter(expires_at__lt=older_than or django_timezone.now()).delete()
    return deleted


def user_update(*, user: User, name: str | None = None) -> User:
    fields = []
    if name is not None:
        user.name = name
        fields.append("name")
    if fields:
        user.save(update_fields=fields)
    return user


def _unique_slug(base: str) -> str:
    root = (slugify(base) or "organizer")[:70]
    slug, n = root, 2
    while OrganizerProfile.objects.filter(slug=slug).exists():
        slug, n = f"{root}-{n}", n + 1
    return slug


def organizers_group() -> Group:
    """The group that lets organizers use the admin as their back office.

    Got or created at runtime rather than in a data migration because
    permissions only exist after ``post_migrate``. Missing permissions are
    added on every call, so extending ``ORGANIZER_PERMISSIONS`` reaches the
    existing group; permissions a platform admin added by hand are kept.
    """
    group, _created = Group.objects.get_or_create(name=ORGANIZERS_GROUP_NAME)
    wanted = Q(pk__in=[])
    for app_label, codenames in ORGANIZER_PERMISSIONS.items():
        wanted |= Q(content_type__app_label=app_label, codename__in=codenames)
    permissions = list(Permission.objects.filter(wanted))
    expected = sum(len(codenames) for codenames in ORGANIZER_PERMISSIONS.values())
    if len(permissions) != expected:
        # Only before migrations have run; organizers would then see an empty admin.
        logger.warning("Organizers group: %d of %d permissions exist.", len(permissions), expected)
    group.permissions.add(*permissions)  # idempotent: existing links are skipped
    return group


@transaction.atomic
def organizer_profile_create(
    *,
    user: User,
    display_name: str,
    slug: str | None = None,
    contact_email: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
) -> OrganizerProfile:
    """Make ``user`` an organizer: create their profile, grant the role and open the admin back office
    (staff status and the Organizers group) in one transaction, so no organizer is half made."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if OrganizerProfile.objects.filter(user=user).exists():
        raise OrganizerProfileExists()
    if slug and OrganizerProfile.objects.filter(slug=slug).exists():
        raise SlugTaken()
    try:
        with transaction.atomic():
            profile = OrganizerProfile.objects.create(
                user=user,
                display_name=display_name,
                slug=slug or _unique_slug(display_name),
                contact_email=contact_email or user.email,
                # the model's defaults (UTC, EUR) unless the new organizer chose
                **{k: v for k, v in (("timezone", timezone), ("currency", currency)) if v is not None},
            )
    except IntegrityError as exc:
        raise SlugTaken() from exc
    fields = ["is_staff"]
    user.is_staff = True
    if user.role == User.Role.ATTENDEE:  # an admin stays an admin
        user.role = User.Role.ORGANIZER
        fields.append("role")
    user.save(update_fields=fields)
    user.groups.add(organizers_group())
    return profile


def organizer_profile_update(
    *,
    profile: OrganizerProfile,
    display_name: str | None = None,
    slug: str | None = None,
    contact_email: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
) -> OrganizerProfile:
    changes = {
        "display_name": display_name,
        "slug": slug,
        "contact_email": contact_email,
        "timezone": timezone,
        "currency": currency,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return profile
    if "slug" in changes and OrganizerProfile.objects.filter(slug=slug).exclude(pk=profile.pk).exists():
        raise SlugTaken()
    for field, value in changes.items():
        setattr(profile, field, value)
    try:
        with transaction.atomic():
            profile.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as exc:
        raise SlugTaken() from exc
    return profile
