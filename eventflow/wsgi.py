"""WSGI entry point (gunicorn eventflow.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")

application = get_wsgi_application()
