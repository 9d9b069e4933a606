"""URL path converters shared by the apps."""

from __future__ import annotations

import uuid


class UUIDConverter:
    """A UUID in either case (RFC 9562 asks readers to accept both); anything else does not match the
    route, so a malformed id is a 404 rather than a database error."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value)
