"""Catalogue responses from rendered bytes: conditional GET, and live stock spliced into cached detail bodies.

A cached catalogue body is kept as the JSON bytes DRF's renderer made of it, so
serving it again renders nothing. A detail body carries live availability, which
changes far more often than the rest of it: it is kept as a template, the
rendered body cut where each ticket type's ``available`` and ``sold_out`` go,
and every request splices the current numbers in (bytes joins, no JSON work).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from rest_framework.renderers import JSONRenderer

from . import cache

# Everyone sees the same public catalogue body, so shared caches may keep it, but stock in it
# moves by the second: every reuse is revalidated (cheap: a 304 carries no body).
PUBLIC = "public, no-cache"
# A body for one caller only (``?mine=true``, an organizer's draft).
PRIVATE = "private, no-cache"

_renderer = JSONRenderer()


def render(data) -> bytes:
    """The bytes DRF's response would carry for ``data``."""
    return _renderer.render(data)


def _not_modified(request: HttpRequest, etag: str) -> bool:
    """``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 has it for this header) or is ``*``."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    bare = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == bare for tag in tags)


def conditional(request: HttpRequest, body: bytes, etag: str, cache_control: str) -> HttpResponse:
    """200 with the body, or 304 with none when the client already holds this version."""
    response = HttpResponseNotModified() if _not_modified(request, etag) else HttpResponse(body)
    if response.status_code == 200:
        response["Content-Type"] = "application/json"
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


def personal(request: HttpRequest, data) -> HttpResponse:
    """A body for the caller alone: rendered now, still with an ETag for revalidation."""
    body = render(data)
    return conditional(request, body, cache.etag(body), PRIVATE)


@dataclass(frozen=True)
class DetailTemplate:
    """A rendered detail body cut around each ticket type's live fields.

    ``parts`` are the bytes between the slots; ``slots`` name, per cut, the ticket
    type (by position in ``ticket_types``) and whether ``available`` (``a``) or
    ``sold_out`` (``s``) goes there; ``ticket_types`` are the ids and the numbers
    the body was built with (used when a snapshot lacks a ticket type).
    """

    etag: str
    parts: tuple[bytes, ...]
    slots: tuple[tuple[int, bytes], ...]
    ticket_types: tuple[tuple[int, int], ...]

    @classmethod
    def from_data(cls, data: dict) -> DetailTemplate:
        # A fresh random marker per body: no title or name can contain it by chance or on purpose.
        nonce = secrets.token_hex(8)
        ticket_types = tuple((item["id"], item["available"]) for item in data["ticket_types"])
        for index, item in enumerate(data["ticket_types"]):
            item["available"] = f"{nonce}:{index}:a"
            item["sold_out"] = f"{nonce}:{index}:s"
        pieces = re.split(rb'"' + nonce.encode() + rb':(\d+):([as])"', render(data))
        parts, slots = [pieces[0]], []
        for at in range(1, len(pieces), 3):
            index, kind, after = pieces[at : at + 3]
            slots.append((int(index), kind))
            parts.append(after)
        return cls(cache.etag(b"".join(parts)), tuple(parts), tuple(slots), ticket_types)

    def fill(self, snapshot: dict | None) -> tuple[bytes, str]:
        """The body with ``snapshot``'s stock (else the numbers it was built with), and its ETag."""
        live = {item["id"]: item["available"] for item in (snapshot or {}).get("items", ())}
        numbers = [live.get(ticket_type_id, built) for ticket_type_id, built in self.ticket_types]
        out = [self.parts[0]]
        for (index, kind), part in zip(self.slots, self.parts[1:], strict=True):
            number = numbers[index]
            out.append(str(number).encode() if kind == b"a" else b"true" if number == 0 else b"false")
            out.append(part)
        stock = hashlib.blake2b(repr(numbers).encode(), digest_size=6).hexdigest()
        return b"".join(out), f'{self.etag[:-1]}-{stock}"'
