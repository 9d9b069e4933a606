"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from .models import OrganizerProfile, TokenFamily, User


def organizer_profile_of(*, user: User) -> OrganizerProfile:
    """The caller's organizer profile; 404 when they have not become an organizer."""
    try:
        return OrganizerProfile.objects.select_related("user").get(user=user)
    except OrganizerProfile.DoesNotExist as exc:
        raise Http404("You have no organizer profile yet; POST /organizers/me creates one.") from exc


def sessions_of(*, user: User) -> QuerySet[TokenFamily]:
    """The user's live sessions (not ended, refresh token not expired), most recently used first."""
    return TokenFamily.objects.filter(user=user, ended_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "-last_used_at", "-created_at"
    )
