"""WebSocket routes (API.md, "Realtime"), mounted by eventflow/asgi.py."""

from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r"^ws/events/(?P<event_id>[0-9]{1,18})/$", consumers.EventConsumer.as_asgi()),
    re_path(r"^ws/orders/$", consumers.OrdersConsumer.as_asgi()),
    re_path(r"", consumers.UnknownRouteConsumer.as_asgi()),
]
