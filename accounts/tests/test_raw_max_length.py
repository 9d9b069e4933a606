"""A string field's ``max_length`` applies to what the client sent, before whitespace is trimmed
(eventflow.api.serializers.StrictInputSerializer): the schema fuzzer sent 121 characters led by
\x1f, which DRF trimmed to 120 and accepted against a ``maxLength`` of 120."""

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_name_over_the_limit_as_sent_is_refused_even_if_trimming_would_fit_it():
    client = APIClient()
    client.force_authenticate(UserFactory())
    r = client.post("/api/v1/organizers/me", {"display_name": "\u001f" + "x" * 120}, format="json")
    assert r.status_code == 400, r.content
    assert "display_name" in r.json()["errors"]
    r = client.post("/api/v1/organizers/me", {"display_name": " Ada Live "}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["display_name"] == "Ada Live"
