"""Request body parsing that no client can turn into a server error.

Python's ``json`` accepts documents that the rest of the stack cannot handle:
nesting deep enough to exhaust the interpreter's recursion limit (in the
parser itself, or later in anything that walks the data), strings holding
lone UTF-16 surrogates (``"\\ud800"``: valid JSON, but not Unicode text, so
hashing, logging, the database driver and the JSON renderer all fail to
encode them), and NUL characters (PostgreSQL text cannot store them). Each
is refused here, once, as a 400 ``parse_error``, so no code behind the parser
ever sees them.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deeper than any request body of this API needs, far below the recursion limit.
MAX_DEPTH = 32


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return _("Strings may not contain NUL characters.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _("Strings may not contain unpaired UTF-16 surrogates.")
    return None


def check_json_value(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ParseError unless ``data`` is at most ``max_depth`` deep and all its text is clean."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                raise ParseError(problem)
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise ParseError(_("The JSON document is nested more than %(max)d levels deep.") % {"max": max_depth})
            if isinstance(value, dict):
                for key, item in value.items():
                    problem = _text_problem(key)
                    if problem:
                        raise ParseError(problem)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus the limits above."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(
                _("The JSON document is nested more than %(max)d levels deep.") % {"max": MAX_DEPTH}
            ) from exc
        check_json_value(data)
        return data
