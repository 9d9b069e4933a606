"""WebSockets (API.md, "Realtime") through the real ASGI application and the Redis channel layer.

Each test body is one coroutine (``scenario``) driving ``channels.testing.WebsocketCommunicator``;
database work runs through ``sync_to_async`` on the test's own thread. The publisher's thread is
off (``publisher.autostart``): a test calls ``publisher.flush()`` where the thread would tick, so
what is sent is decided by the test, not by a clock. Changes commit for real (transaction=True):
pushes go out after commit only, and that is what is under test.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts import revocation
from accounts.tests.factories import UserFactory
from eventflow.asgi import application
from eventflow.tests.clients import as_user as client_for
from events import services as event_services
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services as order_services
from orders.models import Order, WaitlistEntry
from realtime import consumers, publish
from realtime.publish import publisher

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost")]


@pytest.fixture(autouse=True)
def _publisher(settings):
    """Recording on, the thread off, no claim between flushes (REALTIME_STOCK_PUSH_MS=0; the claim's
    own test sets it); nothing left over from another test."""
    settings.REALTIME_STOCK_PUSH_MS = 0
    publisher.stop()
    publisher.enabled, publisher.autostart = True, False
    publisher.flush(stock=False)
    publisher._stock.clear()
    publisher._updated.clear()
    publisher._outbox.clear()
    consumers._public.clear()
    yield publisher
    publisher.stop()
    publisher.enabled, publisher.autostart = False, True
    publisher._outbox.clear()


def scenario(coroutine_function):
    """Run a test's coroutine, once what the test's setup recorded (its factories' saves) is sent."""
    publisher.flush()
    return async_to_sync(coroutine_function)()


flush = sync_to_async(publisher.flush)


def buy(user, event, tier, quantity=1):
    response = client_for(user).post(
        "/api/v1/orders", {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": quantity}]}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


async def connect(path: str, *, headers=ORIGIN) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def received(communicator: WebsocketCommunicator) -> dict:
    return json.loads(await communicator.receive_from(timeout=3))


async def closed_with(communicator: WebsocketCommunicator) -> int:
    output = await communicator.receive_output(timeout=3)
    assert output["type"] == "websocket.close", output
    return output["code"]


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED)


@pytest.fixture
def tier(event):
    return TicketTypeFactory(
        event=event, name="GA", price_cents=2500, capacity=20, max_per_order=10, max_per_buyer=None
    )


# --- /ws/events/{id}/ --------------------------------------------------------------------------


def test_a_purchase_pushes_stock_updated_to_the_events_subscribers(event, tier):
    buyer = UserFactory()
    other_event = EventFactory(status=Event.Status.PUBLISHED)

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        bystander = await connect(f"/ws/events/{other_event.pk}/")
        await sync_to_async(buy)(buyer, event, tier, 3)
        assert await flush() == 1  # stock.updated; the buyer has no socket open: no order.status
        assert await received(socket) == {"type": "stock.updated", "data": {"ticket_type": tier.pk, "available": 17}}
        assert await socket.receive_nothing(timeout=0.3)
        assert await bystander.receive_nothing(timeout=0.1)  # another event's subscribers hear nothing
        await socket.disconnect()
        await bystander.disconnect()

    scenario(body)
    assert Order.objects.get(buyer=buyer).items.get().quantity == 3


def test_a_rolled_back_purchase_sends_nothing(event, tier):
    buyer = UserFactory()

    def buy_then_fail():
        def in_transaction():
            with transaction.atomic():
                order_services.order_place(
                    buyer=buyer, event_id=event.pk, lines=[order_services.Line(ticket_type_id=tier.pk, quantity=2)]
                )
                raise RuntimeError("the request failed after the purchase")

        with pytest.raises(RuntimeError):
            in_transaction()

    async def body():
        events = await connect(f"/ws/events/{event.pk}/")
        orders = await connect(f"/ws/orders/?token={AccessToken.for_user(buyer)}")
        await sync_to_async(buy_then_fail)()
        assert await flush() == 0
        assert await events.receive_nothing(timeout=0.3)
        assert await orders.receive_nothing(timeout=0.1)
        await events.disconnect()
        await orders.disconnect()

    scenario(body)
    assert not Order.objects.exists()
    tier.refresh_from_db()
    assert tier.available == 20


@pytest.mark.parametrize("path", ["/ws/events/999999/", "/ws/events/{draft}/", "/ws/events/{deleted}/", "/ws/nowhere/"])
def test_unknown_draft_and_deleted_events_are_closed_with_4404(path):
    draft = EventFactory(status=Event.Status.DRAFT)
    deleted = EventFactory(status=Event.Status.PUBLISHED)
    Event.objects.filter(pk=deleted.pk).update(deleted_at=deleted.created_at)

    async def body():
        socket = await connect(path.format(draft=draft.pk, deleted=deleted.pk))
        assert await closed_with(socket) == 4404

    scenario(body)


def test_a_foreign_browser_origin_is_refused(event):
    async def body():
        communicator = WebsocketCommunicator(
            application, f"/ws/events/{event.pk}/", headers=[(b"origin", b"https://evil.example")]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert not connected

    scenario(body)


def test_stock_low_is_sent_once_per_crossing_of_the_threshold(event, tier):
    TicketType.objects.filter(pk=tier.pk).update(low_stock_threshold=5)
    buyers = UserFactory.create_batch(4)

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")

        async def step(action):
            await sync_to_async(action)()
            await flush()
            messages = []
            while not await socket.receive_nothing(timeout=0.2):
                messages.append(await received(socket))
            return [(m["type"], m["data"]["available"]) for m in messages]

        assert await step(lambda: buy(buyers[0], event, tier, 10)) == [("stock.updated", 10)]
        assert await step(lambda: buy(buyers[1], event, tier, 5)) == [("stock.updated", 5), ("stock.low", 5)]
        assert await step(lambda: buy(buyers[2], event, tier, 1)) == [("stock.updated", 4)]  # still low: once
        first = await sync_to_async(Order.objects.get)(buyer=buyers[0])
        cancel = lambda: client_for(buyers[0]).post(f"/api/v1/orders/{first.pk}/cancel", format="json")  # noqa: E731
        assert await step(cancel) == [("stock.updated", 14)]  # back above
        assert await step(lambda: buy(buyers[3], event, tier, 10)) == [("stock.updated", 4), ("stock.low", 4)]
        await socket.disconnect()

    scenario(body)


def test_two_hundred_purchases_are_coalesced_and_the_last_push_is_final(event):
    tier = TicketTypeFactory(event=event, capacity=1000, max_per_order=10, max_per_buyer=None, stock_buckets=1)
    buyer = UserFactory()
    line = [order_services.Line(ticket_type_id=tier.pk, quantity=1)]

    def burst(n):
        for _ in range(n):
            order_services.order_place(buyer=buyer, event_id=event.pk, lines=line)

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        for _ in range(4):  # four ticks of the publisher during a 200-purchase burst
            await sync_to_async(burst)(50)
            await flush()
        messages = []
        while not await socket.receive_nothing(timeout=0.3):
            messages.append(await received(socket))
        assert [m["data"]["available"] for m in messages if m["type"] == "stock.updated"] == [950, 900, 850, 800]
        await socket.disconnect()

    scenario(body)
    assert Order.objects.count() == 200


def test_a_lost_claim_keeps_the_event_dirty_until_its_final_state_is_pushed(event, tier, settings):
    """Another process pushed this event less than an interval ago (it holds the claim): this one
    sends nothing now, and the final count once the claim is free."""
    settings.REALTIME_STOCK_PUSH_MS = 60_000  # no claim runs out during the test
    buyer = UserFactory()

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        await sync_to_async(cache.set)(publish._claim_key(event.pk), "another process", 60)
        await sync_to_async(buy)(buyer, event, tier, 2)
        assert await flush() == 0
        assert await socket.receive_nothing(timeout=0.3)
        await sync_to_async(buy)(buyer, event, tier, 1)
        await sync_to_async(cache.delete)(publish._claim_key(event.pk))
        assert await flush() == 1
        assert await received(socket) == {"type": "stock.updated", "data": {"ticket_type": tier.pk, "available": 17}}
        # The claim is now this process's: another tick right away sends nothing new.
        await sync_to_async(buy)(buyer, event, tier, 1)
        assert await flush() == 0
        assert publisher._stock == {event.pk}
        await socket.disconnect()

    scenario(body)


def test_the_publisher_thread_coalesces_a_concurrent_burst(event, settings):
    """The real thread, real threads buying: far fewer pushes than purchases, the last one final."""
    settings.REALTIME_STOCK_PUSH_MS = 250  # a 12 s burst would still push at most 48 times
    tier = TicketTypeFactory(event=event, capacity=1000, max_per_order=10, max_per_buyer=None)
    buyers = UserFactory.create_batch(4)
    line = [order_services.Line(ticket_type_id=tier.pk, quantity=1)]

    def burst(buyer):
        from django.db import connection

        try:
            for _ in range(50):
                order_services.order_place(buyer=buyer, event_id=event.pk, lines=line)
        finally:
            connection.close()

    def run_burst():
        publisher.autostart = True
        threads = [threading.Thread(target=burst, args=(b,)) for b in buyers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        started = time.monotonic()
        await sync_to_async(run_burst)()
        burst_seconds = time.monotonic() - started
        counts = []
        deadline = time.monotonic() + 10
        while (not counts or counts[-1] != 800) and time.monotonic() < deadline:
            message = await received(socket)
            if message["type"] == "stock.updated":
                counts.append(message["data"]["available"])
        assert counts[-1] == 800
        assert len(counts) <= burst_seconds / 0.25 + 2, (burst_seconds, counts)  # one push per interval
        assert len(counts) < 200 // 4, counts
        assert counts == sorted(counts, reverse=True)
        await socket.disconnect()

    scenario(body)
    assert Order.objects.count() == 200


def test_event_updated_and_event_cancelled(event, tier):
    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        fresh = await sync_to_async(Event.objects.get)(pk=event.pk)
        await sync_to_async(event_services.event_update)(event=fresh, title="A new title")
        await sync_to_async(event_services.ticket_type_update)(ticket_type=tier, name="Standing")
        await flush()
        assert await received(socket) == {"type": "event.updated", "data": {"event": event.pk}}  # one for both saves
        assert await socket.receive_nothing(timeout=0.3)
        await sync_to_async(event_services.event_cancel)(event=fresh)
        await flush()
        kinds = set()
        while not await socket.receive_nothing(timeout=0.3):
            kinds.add((await received(socket))["type"])
        assert "event.cancelled" in kinds
        await socket.disconnect()

    scenario(body)


def test_a_rolled_back_catalogue_change_sends_nothing(event, tier):
    def change_then_fail():
        def in_transaction():
            with transaction.atomic():
                event_services.ticket_type_update(ticket_type=tier, capacity=30)
                raise RuntimeError

        with pytest.raises(RuntimeError):
            in_transaction()

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        await sync_to_async(change_then_fail)()
        assert await flush() == 0
        assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()

    scenario(body)


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_the_in_process_layer_of_the_embedded_default_delivers_too(event, tier):
    buyer = UserFactory()

    async def body():
        socket = await connect(f"/ws/events/{event.pk}/")
        await sync_to_async(buy)(buyer, event, tier, 1)
        assert await flush() == 1
        assert await received(socket) == {"type": "stock.updated", "data": {"ticket_type": tier.pk, "available": 19}}
        await socket.disconnect()

    assert "InMemory" in type(get_channel_layer()).__name__
    scenario(body)


# --- /ws/orders/ -------------------------------------------------------------------------------


def test_order_status_reaches_its_buyer_only(event, tier):
    buyer, other = UserFactory(), UserFactory()

    async def body():
        mine = await connect(f"/ws/orders/?token={AccessToken.for_user(buyer)}")
        theirs = await connect(f"/ws/orders/?token={AccessToken.for_user(other)}")
        order = await sync_to_async(buy)(buyer, event, tier, 2)
        await flush()
        assert await received(mine) == {"type": "order.status", "data": {"id": order["id"], "status": "reserved"}}
        await sync_to_async(client_for(buyer).post)(f"/api/v1/orders/{order['id']}/cancel", format="json")
        await flush()
        assert await received(mine) == {"type": "order.status", "data": {"id": order["id"], "status": "cancelled"}}
        assert await theirs.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await theirs.disconnect()
        # No socket open any more: the buyer's next order is not sent to the channel layer at all.
        await sync_to_async(buy)(buyer, event, tier, 1)
        assert await flush() == 1  # the event's stock.updated only

    scenario(body)


def test_a_waitlist_offer_is_pushed_to_its_buyer(event):
    tier = TicketTypeFactory(event=event, price_cents=1000, capacity=1, max_per_order=2, max_per_buyer=None)
    holder, waiting = UserFactory(), UserFactory()

    async def body():
        socket = await connect(f"/ws/orders/?token={AccessToken.for_user(waiting)}")
        held = await sync_to_async(buy)(holder, event, tier, 1)
        joined = await sync_to_async(client_for(waiting).post)(
            f"/api/v1/events/{event.pk}/waitlist", {"ticket_type": tier.pk, "quantity": 1}, format="json"
        )
        assert joined.status_code == 201, joined.content
        await sync_to_async(client_for(holder).post)(f"/api/v1/orders/{held['id']}/cancel", format="json")
        await flush()
        messages = [await received(socket), await received(socket)]
        offer = await sync_to_async(WaitlistEntry.objects.select_related("order").get)(user=waiting)
        assert {"type": "order.status", "data": {"id": str(offer.order_id), "status": "reserved"}} in messages
        [pushed] = [m for m in messages if m["type"] == "waitlist.offer"]
        assert pushed["data"]["order"] == {
            "id": str(offer.order_id),
            "event": event.pk,
            "ticket_type": tier.pk,
            "quantity": 1,
            "total_cents": 1000,
            "currency": event.currency,
            "expires_at": offer.order.expires_at.isoformat(),
        }
        await socket.disconnect()

    scenario(body)


def test_the_orders_socket_refuses_missing_bad_expired_and_revoked_tokens():
    user = UserFactory()
    expired = AccessToken.for_user(user)
    expired.set_exp(from_time=expired.current_time - timedelta(hours=1))
    refresh_like = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"  # well-formed, not signed with our key

    async def body():
        for query, code in [("", 4401), ("?token=", 4401), ("?token=garbage", 4401), (f"?token={refresh_like}", 4401)]:
            assert await closed_with(await connect(f"/ws/orders/{query}")) == code, query
        assert await closed_with(await connect(f"/ws/orders/?token={expired}")) == 4402
        good = str(AccessToken.for_user(user))
        await sync_to_async(revocation.void_tokens)(user.pk, every=True)
        assert await closed_with(await connect(f"/ws/orders/?token={good}")) == 4403

    scenario(body)


def test_the_orders_socket_closes_when_its_token_expires(event, tier, monkeypatch):
    """The socket's clock says the token has 0.3 s left (the token itself is valid for an hour,
    so the handshake never races its expiry)."""
    user = UserFactory()
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(hours=1))
    monkeypatch.setattr(consumers, "time", SimpleNamespace(time=lambda: token["exp"] - 0.3, monotonic=time.monotonic))

    async def body():
        socket = await connect(f"/ws/orders/?token={token}")
        assert await socket.receive_nothing(timeout=0.1)  # open
        output = await socket.receive_output(timeout=5)
        assert output == {"type": "websocket.close", "code": 4402}

    scenario(body)


# --- low_stock_threshold through the API -------------------------------------------------------


def test_the_low_stock_threshold_is_set_through_the_ticket_type_api(event, tier):
    client = client_for(event.organizer.user)
    url = f"/api/v1/events/{event.pk}/ticket-types/{tier.pk}"
    response = client.patch(url, {"low_stock_threshold": 3}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["low_stock_threshold"] == 3
    tier.refresh_from_db()
    assert tier.low_stock_threshold == 3
    response = client.patch(url, {"low_stock_threshold": -1}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert client.patch(url, {"low_stock_threshold": None}, format="json").json()["low_stock_threshold"] is None
