"""ASGI entry point: HTTP goes to Django as under WSGI, WebSockets to the realtime app (Channels).

Served by Daphne: ``daphne eventflow.asgi:application`` (Compose's ``asgi`` service), and by
``manage.py runserver`` in development (``daphne`` is first in INSTALLED_APPS).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")

# Django first: it sets the app registry up before the consumers' imports touch models.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from realtime.auth import QueryStringJWTMiddleware, origin_validator  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": origin_validator(QueryStringJWTMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
