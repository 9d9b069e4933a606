"""The API as one user sees it, for tests across the apps."""

from __future__ import annotations

from rest_framework.test import APIClient


def as_user(user) -> APIClient:
    """An API client signed in as ``user`` (authentication itself is tested in accounts/tests)."""
    client = APIClient()
    client.force_authenticate(user)
    return client
