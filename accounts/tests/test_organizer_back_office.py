"""Becoming an organizer opens the admin back office: staff status and the Organizers group."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import ORGANIZER_PERMISSIONS, ORGANIZERS_GROUP_NAME, organizers_group

from .factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ORG = "/api/v1/organizers/me"


def test_becoming_an_organizer_over_the_api_opens_the_admin():
    # given an attendee who is not staff
    user = UserFactory(email="dora@example.com")
    assert not user.is_staff
    api = APIClient()
    api.force_authenticate(user)
    browser = Client()
    browser.post("/admin/login/", {"username": "dora@example.com", "password": DEFAULT_PASSWORD})
    assert "_auth_user_id" not in browser.session  # the admin refuses attendees

    # when they become an organizer
    assert api.post(ORG, {"display_name": "Dora Concerts"}).status_code == 201

    # then they are staff in the Organizers group
    user.refresh_from_db()
    assert (user.role, user.is_staff, user.is_superuser) == ("organizer", True, False)
    assert list(user.groups.values_list("name", flat=True)) == [ORGANIZERS_GROUP_NAME]
    assert user.has_perm("events.add_event")
    assert user.has_perm("events.change_tickettype")
    assert not user.has_perm("accounts.change_user")

    # and can log into the admin with their password, where they manage events and nothing else
    r = browser.post("/admin/login/?next=/admin/", {"username": "dora@example.com", "password": DEFAULT_PASSWORD})
    assert r.status_code == 302
    assert r["Location"] == "/admin/"
    index = browser.get("/admin/")
    assert index.status_code == 200
    assert b"/admin/events/event/" in index.content
    assert b"/admin/accounts/user/" not in index.content
    assert browser.get("/admin/accounts/user/").status_code == 403


def test_an_admin_becoming_an_organizer_stays_admin_and_joins_the_group():
    admin = User.objects.create_superuser(email="root@example.com", password="x-Strong-Pass-1")
    api = APIClient()
    api.force_authenticate(admin)

    assert api.post(ORG, {"display_name": "House"}).status_code == 201

    admin.refresh_from_db()
    assert (admin.role, admin.is_staff, admin.is_superuser) == ("admin", True, True)
    assert admin.groups.filter(name=ORGANIZERS_GROUP_NAME).exists()


def test_a_refused_profile_leaves_the_user_as_they_were():
    # given an organizer profile slug already in use
    api = APIClient()
    api.force_authenticate(UserFactory())
    assert api.post(ORG, {"display_name": "Taken", "slug": "taken"}).status_code == 201
    user = UserFactory()
    api.force_authenticate(user)

    # when another user asks for it
    assert api.post(ORG, {"display_name": "Mine", "slug": "taken"}).status_code == 400

    # then nothing was granted
    user.refresh_from_db()
    assert (user.role, user.is_staff) == ("attendee", False)
    assert not user.groups.exists()


def test_organizers_group_is_idempotent_and_keeps_permissions_added_by_hand():
    # given the group, to which an admin added one more permission
    group = organizers_group()
    expected = {codename for codenames in ORGANIZER_PERMISSIONS.values() for codename in codenames}
    assert set(group.permissions.values_list("codename", flat=True)) == expected
    extra = group.permissions.model.objects.get(codename="view_user")
    group.permissions.add(extra)

    # when it is asked for again
    again = organizers_group()

    # then it is the same group, with the same permissions plus the one added by hand
    assert again.pk == group.pk
    assert Group.objects.filter(name=ORGANIZERS_GROUP_NAME).count() == 1
    assert set(again.permissions.values_list("codename", flat=True)) == expected | {"view_user"}
