"""The WebSocket endpoints (API.md, "Realtime"). Clients only listen: what they send is ignored.

Every message is a JSON text ``{"type": ..., "data": ...}``, built once by ``realtime.publish``
and relayed as it is. A socket subscribes to its group before it is accepted, so nothing sent
after the handshake completes is missed; what happened before it, a client reads over REST
(``GET /events/{id}/availability``, ``GET /orders``) once connected. Close codes: realtime/auth.py.
"""

from __future__ import annotations

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import selectors
from .auth import CLOSE_NOT_FOUND, CLOSE_TOKEN_EXPIRED
from .publish import event_group, remember_server_loop, user_group, user_joined


class RealtimeConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def subscribe(self, group: str) -> None:
        remember_server_loop()
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def refuse(self, code: int) -> None:
        """Accept, then close with ``code``: a refused handshake could not say why."""
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Listen-only sockets: anything a client sends is ignored."""

    async def realtime_push(self, event: dict) -> None:
        await self.send(text_data=event["text"])


# Whether an event may be subscribed to, per process, for PUBLIC_CHECK_SECONDS: a thousand
# subscribers arriving for an on-sale cost one query, not a thousand queued on the one thread
# Channels runs database calls in (which made Daphne drop handshakes after its 5 s: bench/realtime.py).
PUBLIC_CHECK_SECONDS = 5.0
_public: dict[int, tuple[float, bool]] = {}


async def event_is_public(event_id: int) -> bool:
    now = time.monotonic()
    known = _public.get(event_id)
    if known is not None and known[0] > now:
        return known[1]
    public = await database_sync_to_async(selectors.event_is_public)(event_id=event_id)
    if len(_public) > 10_000:
        _public.clear()
    _public[event_id] = (now + PUBLIC_CHECK_SECONDS, public)
    return public


class EventConsumer(RealtimeConsumer):
    """``/ws/events/{id}/``, public: ``stock.updated``, ``stock.low``, ``event.updated``, ``event.cancelled``."""

    async def connect(self) -> None:
        event_id = int(self.scope["url_route"]["kwargs"]["event_id"])
        if not await event_is_public(event_id):
            await self.refuse(CLOSE_NOT_FOUND)
            return
        await self.subscribe(event_group(event_id))


class UnknownRouteConsumer(RealtimeConsumer):
    """Any other path under the WebSocket router: closed with 4404."""

    async def connect(self) -> None:
        await self.refuse(CLOSE_NOT_FOUND)


class OrdersConsumer(RealtimeConsumer):
    """``/ws/orders/?token=<access JWT>``: the user's own ``order.status`` and ``waitlist.offer``.

    The socket lives as long as its access token: when the token expires, it is closed with 4402
    and the client reconnects with a fresh one (so a revoked account is cut off within a token's
    lifetime at most, JWT_ACCESS_MINUTES)."""

    _expiry: asyncio.TimerHandle | None = None
    user_id: int | None = None

    async def connect(self) -> None:
        code = self.scope.get("auth_close_code")
        if code is not None:
            await self.refuse(code)
            return
        self.user_id = self.scope["user"].pk
        await database_sync_to_async(user_joined)(self.user_id)
        await self.subscribe(user_group(self.user_id))
        left = self.scope["token_exp"] - time.time()
        self._expiry = asyncio.get_running_loop().call_later(
            max(0.0, left), lambda: asyncio.ensure_future(self.close(code=CLOSE_TOKEN_EXPIRED))
        )

    async def disconnect(self, code: int) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self.user_id is not None:
            await database_sync_to_async(user_joined)(self.user_id, -1)
        await super().disconnect(code)
