"""Sending a domain signal after the current transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger("eventflow.signals")


def send_now(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Every receiver runs; one that raises is logged and does not stop the others."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("Receiver %r of %r failed", receiver, sender, exc_info=result)


def send_on_commit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """``signal`` once the current transaction commits (at once outside one); nothing if it rolls back.

    No receiver connected (the signal's own check, without building anything) costs one call."""
    if not signal.has_listeners(sender):
        return
    transaction.on_commit(lambda: send_now(signal, sender, **kwargs))
