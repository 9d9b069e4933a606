"""The webhooks app's own signals, for the apps that build on it (metrics).

Sent after the attempt's outcome is recorded and committed, from the worker (or request, when tasks
run eagerly) that made it; receivers must be quick and must not raise (``eventflow.signals``).
"""

from django.dispatch import Signal

# Every attempt, whatever its outcome: ``delivery_id``, ``endpoint_id``, ``event_type``,
# ``succeeded`` (bool), ``status_code`` (int or None: no response), ``latency_ms``, ``attempt`` (1-based).
delivery_attempted = Signal()
# A failed attempt (same arguments, plus ``error`` (str) and ``final``: no retry will follow).
delivery_failed = Signal()
# An endpoint was disabled after repeated failure: ``endpoint_id``, ``organizer_id``.
endpoint_disabled = Signal()
