"""DELETE /users/me and the admin's "Delete personal data": personal data goes, orders stay,
future tickets are void (and refunded where the policy allows), sessions and credentials die."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import privacy, twofactor
from accounts.models import OrganizerProfile, RecoveryCode, TokenFamily, TwoFactor, User
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services as order_services
from orders.models import Order, Ticket, WaitlistEntry
from orders.tests.helpers import paid_order
from orders.transfers import ticket_transfer
from orders.waitlist import waitlist_join

from .factories import DEFAULT_PASSWORD, OrganizerProfileFactory, UserFactory
from .test_auth import assert_problem
from .test_two_factor import Clock, code, enable_2fa

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


def sign_in(user: User, **extra) -> tuple[APIClient, dict]:
    client = APIClient()
    r = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD, **extra}, format="json")
    assert r.status_code == 200, r.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    return client, r.json()


def test_deleting_the_account_anonymises_it_keeps_orders_and_ends_everything(django_capture_on_commit_callbacks):
    # given a buyer with a reservation, paid orders of future events (refundable, not refundable,
    # one ticket given to a friend), a ticket of a past event, and a place on a waiting list
    user = UserFactory(email="ada@example.com", name="Ada Lovelace")
    friend = UserFactory(email="friend@example.com")
    refundable = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24))
    final_sale = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED))
    shared = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24))
    past = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24))
    reserved = order_services.order_place(
        buyer=user, event_id=refundable.event_id, lines=[order_services.Line(refundable.pk, 1)]
    )
    refunded = paid_order(user, refundable, 2)
    kept = paid_order(user, final_sale, 1)
    shared_order = paid_order(user, shared, 2)
    given = ticket_transfer(ticket_id=shared_order.tickets.first().pk, sender=user, email=friend.email)
    past_order = paid_order(user, past, 1)
    Event.objects.filter(pk=past.event_id).update(
        starts_at=timezone.now() - timedelta(days=2), ends_at=timezone.now() - timedelta(days=2, hours=-3)
    )
    sold_out = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED), capacity=1)
    paid_order(friend, sold_out, 1)
    entry = waitlist_join(user=user, event_id=sold_out.event_id, ticket_type_id=sold_out.pk, quantity=1)
    client, tokens = sign_in(user)
    other_client, _other = sign_in(user)

    # when the user deletes the account with the password
    with django_capture_on_commit_callbacks(execute=True):
        r = client.delete(ME, {"password": DEFAULT_PASSWORD}, format="json")

    # then the personal data is gone and the account is closed
    assert r.status_code == 204, r.content
    user.refresh_from_db()
    assert user.email == f"deleted-{user.pk}@invalid"
    assert user.name == ""
    assert not user.has_usable_password()
    assert user.is_active is False
    # every session ended; the access tokens and the refresh token stopped working
    assert not TokenFamily.objects.filter(user=user, ended_at__isnull=True).exists()
    assert TokenFamily.objects.filter(user=user).count() == 2
    assert client.get(ME).status_code == 401
    assert other_client.get(ME).status_code == 401
    assert APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401
    # the old credentials fail, and look like any wrong login
    r = APIClient().post(LOGIN, {"email": "ada@example.com", "password": DEFAULT_PASSWORD}, format="json")
    assert_problem(r, 401, "invalid_credentials")
    # the orders are all kept, each in the state the rules give it
    assert Order.objects.filter(buyer=user).count() == 5
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.CANCELLED
    refunded.refresh_from_db()
    assert refunded.status == Order.Status.REFUNDED
    assert set(refunded.tickets.values_list("status", flat=True)) == {Ticket.Status.VOID}
    kept.refresh_from_db()
    assert kept.status == Order.Status.PAID  # the policy allows no refund: paid, but its ticket is void
    assert set(kept.tickets.values_list("status", flat=True)) == {Ticket.Status.VOID}
    shared_order.refresh_from_db()
    assert shared_order.status == Order.Status.PAID  # the friend's ticket stays good
    given.refresh_from_db()
    assert given.status == Ticket.Status.VALID
    assert given.holder == friend
    assert not shared_order.tickets.filter(holder=user, status=Ticket.Status.VALID).exists()
    assert past_order.tickets.get().status == Ticket.Status.VALID  # the past is left alone
    # and the waiting list no longer waits for them
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.REMOVED


def test_a_wrong_password_deletes_nothing():
    user = UserFactory(email="ada@example.com")
    client, _tokens = sign_in(user)
    assert_problem(client.delete(ME, {"password": "wrong"}, format="json"), 400, "password_incorrect")
    assert_problem(client.delete(ME, {}, format="json"), 400, "invalid")
    assert_problem(client.delete(ME, {"password": DEFAULT_PASSWORD, "why": "x"}, format="json"), 400, "invalid")
    user.refresh_from_db()
    assert user.email == "ada@example.com"
    assert user.is_active
    assert client.get(ME).status_code == 200


def test_wrong_passwords_at_deletion_count_toward_the_login_lockout(settings):
    user = UserFactory()
    client, _tokens = sign_in(user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert_problem(client.delete(ME, {"password": "wrong"}, format="json"), 400, "password_incorrect")
    assert_problem(client.delete(ME, {"password": "wrong"}, format="json"), 429, "throttled")
    # locked: even the right password is refused now, and the account stays
    assert_problem(client.delete(ME, {"password": DEFAULT_PASSWORD}, format="json"), 429, "throttled")
    assert User.objects.get(pk=user.pk).is_active


def test_with_2fa_on_deletion_needs_a_code(monkeypatch):
    clock = Clock(1_900_000_020.0)
    monkeypatch.setattr(twofactor, "_clock", clock)
    user = UserFactory()
    setup = enable_2fa(user, clock)
    client, _tokens = sign_in(user, otp=code(setup["secret"], clock))
    clock.step()

    assert_problem(client.delete(ME, {"password": DEFAULT_PASSWORD}, format="json"), 400, "otp_required")
    r = client.delete(ME, {"password": DEFAULT_PASSWORD, "otp": "000000"}, format="json")
    assert_problem(r, 400, "otp_invalid")
    assert User.objects.get(pk=user.pk).is_active

    r = client.delete(
        ME, {"password": DEFAULT_PASSWORD, "otp": pyotp.TOTP(setup["secret"]).at(clock.now)}, format="json"
    )
    assert r.status_code == 204, r.content
    assert not TwoFactor.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()


def test_an_organizer_keeps_the_profile_without_their_email():
    profile = OrganizerProfileFactory(user__email="org@example.com", contact_email="org@example.com")
    user = profile.user
    user.groups.add(Group.objects.create(name="Organizers-test"))
    privacy.account_anonymise(user=user)
    profile.refresh_from_db()
    assert profile.contact_email == f"deleted-{user.pk}@invalid"
    user.refresh_from_db()
    assert not user.is_staff
    assert not user.groups.exists()
    # a business address stays
    other = OrganizerProfileFactory(contact_email="box-office@venue.example")
    privacy.account_anonymise(user=other.user)
    assert OrganizerProfile.objects.get(pk=other.pk).contact_email == "box-office@venue.example"


def test_anonymising_twice_changes_nothing_more():
    user = UserFactory()
    first = privacy.account_anonymise(user=user)
    second = privacy.account_anonymise(user=user)
    assert first.email == second.email == f"deleted-{user.pk}@invalid"


def test_staff_delete_personal_data_from_the_admin(client):
    # given a platform admin and an account a data request is about
    admin_user = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    subject = UserFactory(email="subject@example.com", name="Sam")
    client.force_login(admin_user)

    # when they run the action on it (and, by mistake, on themselves) and confirm
    r = client.post(
        "/admin/accounts/user/",
        {"action": "delete_personal_data", "_selected_action": [subject.pk, admin_user.pk], "post": "yes"},
        follow=True,
    )

    # then the account is anonymised, theirs is untouched, and they are told both
    assert r.status_code == 200
    subject.refresh_from_db()
    assert subject.email == f"deleted-{subject.pk}@invalid"
    assert subject.name == ""
    assert not subject.is_active
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert admin_user.email != f"deleted-{admin_user.pk}@invalid"
    messages = [str(m) for m in r.context["messages"]]
    assert "Personal data of 1 account deleted." in messages
    assert "You cannot delete your own account here." in messages


def test_deletion_leaves_no_trace_in_login_records_sessions_or_webhook_payloads(
    settings, django_capture_on_commit_callbacks, mailoutbox
):
    from axes.models import AccessAttempt

    from webhooks import services as webhook_services
    from webhooks.models import WebhookDelivery
    from webhooks.selectors import order_data

    # given a buyer whose order an organizer's webhook delivered (name and email in the payload),
    # a failed login from another address, and a session on a named device
    user = UserFactory(email="ada@example.com", name="Ada Lovelace")
    tier = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24))
    endpoint = webhook_services.endpoint_create(
        organizer=tier.event.organizer, url="https://hooks.example.com/in", events=["order.paid"]
    )
    order = paid_order(user, tier, 1)
    data = order_data(order_id=order.pk, status="paid", previous_status="reserved")  # what the worker stores
    assert data["order"]["buyer"] == {"name": "Ada Lovelace", "email": "ada@example.com"}
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id="evt_test",
        event_type="order.paid",
        next_attempt_at=timezone.now(),
        payload={"id": "evt_test", "type": "order.paid", "created_at": timezone.now().isoformat(), "data": data},
    )
    APIClient().post(LOGIN, {"email": user.email, "password": "wrong-password"}, format="json", REMOTE_ADDR="10.9.9.9")
    assert AccessAttempt.objects.filter(username="ada@example.com").exists()
    client = APIClient(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; Ada's phone)")
    r = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert TokenFamily.objects.filter(user=user, user_agent__contains="Ada's phone").exists()

    # when the account is deleted (its paid order refunded under the policy)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.delete(ME, {"password": DEFAULT_PASSWORD}, format="json")

    # then nothing the person left behind names them, and no mail goes to the anonymised address
    assert r.status_code == 204, r.content
    assert not AccessAttempt.objects.filter(username__iexact="ada@example.com").exists()
    assert set(TokenFamily.objects.filter(user=user).values_list("user_agent", flat=True)) == {""}
    payload = WebhookDelivery.objects.get(event_id="evt_test").payload
    assert payload["data"]["order"]["buyer"] == {"name": "", "email": f"deleted-{user.pk}@invalid"}
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert not [m for m in mailoutbox if any(to.endswith("@invalid") for to in m.to)]


def test_delete_personal_data_asks_for_confirmation_first(client):
    # given a platform admin, an account with a reservation, another account, and one anonymised before
    admin_user = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    subject = UserFactory(email="subject@example.com", name="Sam")
    other = UserFactory(email="other@example.com", name="")
    gone = privacy.account_anonymise(user=UserFactory(email="gone@example.com"))
    tier = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED), price_cents=1000, capacity=10)
    order = order_services.order_place(buyer=subject, event_id=tier.event_id, lines=[order_services.Line(tier.pk, 1)])
    client.force_login(admin_user)
    selection = {"action": "delete_personal_data", "_selected_action": [subject.pk, other.pk, gone.pk, admin_user.pk]}

    # when they choose the action on all four and press "Go"
    page = client.post("/admin/accounts/user/", selection)

    # then a confirmation page lists the accounts and what will happen, and nothing is deleted yet
    assert page.status_code == 200
    assert page.templates[0].name == "admin/accounts/user/delete_personal_data_confirmation.html"
    assert {(a["user"].pk, a["own"], a["anonymised"]) for a in page.context["accounts"]} == {
        (admin_user.pk, True, False),
        (gone.pk, False, True),
        (other.pk, False, False),
        (subject.pk, False, False),
    }
    content = page.content.decode()
    assert "subject@example.com (Sam)" in content
    assert "other@example.com</li>" in content
    assert "your own account: it will be left alone" in content
    assert "already anonymised: nothing more to delete" in content
    for consequence in (
        "it is anonymised",
        "every signed-in session ends",
        "its reservations are cancelled",
        "refunded where the refund policy allows",
        "its orders are kept",
    ):
        assert consequence in content
    for pk in (subject.pk, other.pk, gone.pk, admin_user.pk):
        assert f'<input type="hidden" name="_selected_action" value="{pk}">' in content
    assert '<input type="hidden" name="action" value="delete_personal_data">' in content
    assert '<input type="hidden" name="post" value="yes">' in content
    assert '<a href="/admin/accounts/user/" class="button cancel-link">No, take me back</a>' in content
    assert "<script>" not in content  # nothing inline: the Content-Security-Policy allows no inline script
    subject.refresh_from_db()
    other.refresh_from_db()
    order.refresh_from_db()
    assert (subject.email, subject.is_active, other.is_active) == ("subject@example.com", True, True)
    assert order.status == Order.Status.RESERVED

    # and confirming anonymises the two (the third again: idempotent), cancels the reservation and keeps the order
    done = client.post("/admin/accounts/user/", {**selection, "post": "yes"}, follow=True)
    assert done.status_code == 200
    assert "Personal data of 3 accounts deleted." in [str(m) for m in done.context["messages"]]  # idempotent: 3
    subject.refresh_from_db()
    other.refresh_from_db()
    order.refresh_from_db()
    assert (subject.email, subject.is_active) == (f"deleted-{subject.pk}@invalid", False)
    assert (other.email, other.is_active) == (f"deleted-{other.pk}@invalid", False)
    assert order.status == Order.Status.CANCELLED
    assert order.buyer_id == subject.pk
    rows = {u.pk for u in done.context["cl"].result_list}
    assert {subject.pk, other.pk, admin_user.pk} <= rows
