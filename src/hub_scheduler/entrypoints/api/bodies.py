"""Request bodies: JSON nested too deep is refused before a decoder recurses into it.

A decoder (msgspec here, `json` elsewhere) recurses once per level of nesting, so 50,000
``[`` end in a `RecursionError`: a 500 and a traceback for what is bad input. The check is
a scan at C speed (strings blanked by one regex, then innermost bracket pairs removed once
per allowed level), so a large body costs a few passes over its bytes, never a Python loop.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

#: The deepest JSON a request body may nest (objects and arrays); a payload rarely needs 5.
MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def nested_deeper_than(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `body` nests arrays and objects more than `limit` deep.

    Brackets inside strings don't count. Text that is not JSON may be answered either way
    (the decoder refuses it next), but never so that decoding it recurses past about
    ``2 * limit`` levels.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if shorter == brackets:
            # Only unmatched brackets are left: as many levels as they open, at most.
            return sum(1 for b in brackets if b in _OPENERS) > limit
        brackets = shorter
    return bool(brackets)


class BoundedJSONRequest(Request[Any, Any, Any]):
    """A request whose JSON body is refused (400) when nested deeper than `MAX_JSON_DEPTH`."""

    async def json(self) -> Any:
        """The decoded body, after the depth check."""
        if nested_deeper_than(await self.body()):
            raise ClientException(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
        return await super().json()
