"""Check-in in the back office: organizers add and remove their own staff, read their own check-ins,
and see check-in counts on the event page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from accounts.tests.factories import UserFactory
from checkin.models import CheckIn, CheckInStaff
from checkin.services import check_in_staff_add, ticket_check_in
from events.tests.factories import TicketTypeFactory
from orders import services
from orders.tests.test_admin import listed, logged_in, make_organizer, on_sale

pytestmark = pytest.mark.django_db

STAFF = "/admin/checkin/checkinstaff/"
CHECK_INS = "/admin/checkin/checkin/"


def checked_in_ticket(organizer, name="GA"):
    event = on_sale(organizer)
    tier = TicketTypeFactory(event=event, name=name, capacity=5)
    order = services.order_place(buyer=UserFactory(), event_id=event.pk, lines=[services.Line(tier.pk, 2)])
    ticket = services.order_mark_paid(order=order).tickets.first()
    return event, ticket_check_in(event=event, code=ticket.code, scanned_by=organizer.user, gate="North")


def test_an_organizer_adds_and_removes_their_own_staff_by_email():
    mine, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    theirs, _created = check_in_staff_add(organizer=rival, email="rivaldoor@example.com")
    client = logged_in(mine.user)

    # add by email: an account is made for a new address
    response = client.post(f"{STAFF}add/", {"email": "door@example.com"}, follow=True)
    assert response.status_code == 200
    staff = CheckInStaff.objects.get(organizer=mine)
    assert staff.user.email == "door@example.com"

    # the list is theirs only; the rival's staff page does not exist for them
    assert listed(client.get(STAFF)) == {staff.pk}
    assert client.get(f"{STAFF}{theirs.pk}/change/").status_code == 302  # "doesn't exist": back to the index
    assert client.post(f"{STAFF}{theirs.pk}/delete/", {"post": "yes"}).status_code in (302, 404)
    assert CheckInStaff.objects.filter(pk=theirs.pk).exists()

    # themselves: refused on the form
    response = client.post(f"{STAFF}add/", {"email": mine.user.email})
    assert response.status_code == 200
    assert "You scan your own events already." in response.content.decode()
    assert CheckInStaff.objects.filter(organizer=mine).count() == 1

    # remove
    client.post(f"{STAFF}{staff.pk}/delete/", {"post": "yes"})
    assert not CheckInStaff.objects.filter(organizer=mine).exists()


def test_check_ins_are_read_only_and_scoped_to_the_organizer():
    mine, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    _event, my_check_in = checked_in_ticket(mine)
    _other, their_check_in = checked_in_ticket(rival)
    client = logged_in(mine.user)

    response = client.get(CHECK_INS)
    assert response.status_code == 200
    assert listed(response) == {my_check_in.pk}
    assert client.get(f"{CHECK_INS}{their_check_in.pk}/change/").status_code == 302
    page = client.get(f"{CHECK_INS}{my_check_in.pk}/change/")
    assert page.status_code == 200
    assert b'name="gate"' not in page.content  # read-only
    assert client.get(f"{CHECK_INS}add/").status_code == 403
    assert CheckIn.objects.count() == 2


def test_the_event_page_shows_checked_in_over_issued():
    organizer = make_organizer("Dora Concerts")
    event, _check_in = checked_in_ticket(organizer, name="Balcony")
    response = logged_in(organizer.user).get(reverse("admin:events_event_change", args=[event.pk]))
    assertContains(response, "Checked in / issued")
    assertContains(response, "1 / 2")


def test_a_platform_admin_names_staff_for_any_organizer():
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    organizer = make_organizer("Dora Concerts")
    client = logged_in(admin_user)
    assert client.get(f"{STAFF}add/").status_code == 200
    response = client.post(f"{STAFF}add/", {"organizer": organizer.pk, "email": "door@example.com"})
    assert response.status_code == 302
    assert CheckInStaff.objects.get().organizer == organizer
    assert client.get(STAFF).status_code == 200
    assert client.get(CHECK_INS).status_code == 200
