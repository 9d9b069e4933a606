"""Reads for accounts."""

from __future__ import annotations

from django.http import Http404

from .models import OrganizerProfile, User


def organizer_profile_of(*, user: User) -> OrganizerProfile:
    """The caller's organizer profile; 404 when they have not become an organizer."""
    try:
        return OrganizerProfile.objects.select_related("user").get(user=user)
    except OrganizerProfile.DoesNotExist as exc:
        raise Http404("You have no organizer profile yet; POST /organizers/me creates one.") from exc
