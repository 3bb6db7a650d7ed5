"""Paged listings that answer a plain array: the cursor of the next page travels in the
``X-Next-Cursor`` header and an RFC 8288 ``Link: <...>; rel="next"``, so the body keeps the
shape clients already read."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.params import QueryParameter

from hub_scheduler.domain.admin import PAGE_DEFAULT, PAGE_MAX

T = TypeVar("T")

#: ``?limit=``: items per page of a paged array listing.
PageLimit = Annotated[
    int,
    QueryParameter(ge=1, le=PAGE_MAX, description=f"Items per page (default {PAGE_DEFAULT})."),
]
#: ``?cursor=``: the ``X-Next-Cursor`` of the previous page (`encode_page_cursor`).
PageCursor = Annotated[
    str | None,
    QueryParameter(
        max_length=4096,
        pattern=r"^k1\.[A-Za-z0-9_-]{1,4000}$",
        description="The `X-Next-Cursor` header of the previous page; absent: the first page.",
    ),
]
NEXT_CURSOR = "X-Next-Cursor"
#: The headers a paged array listing documents.
PAGE_HEADERS = [
    ResponseHeader(
        name=NEXT_CURSOR,
        description="The `cursor` of the next page; absent on the last page.",
        documentation_only=True,
        required=False,
    ),
    ResponseHeader(
        name="Link",
        description='RFC 8288: `<URL of the next page>; rel="next"`; absent on the last page.',
        documentation_only=True,
        required=False,
    ),
]


def paged(
    request: Request[Any, Any, Any], items: list[T], next_cursor: str | None
) -> Response[list[T]]:
    """`items` as the body, and when more follow, the next page's cursor and link."""
    headers: dict[str, str] = {}
    if next_cursor is not None:
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        query["cursor"] = next_cursor
        url = request.url.with_replacements(query=urlencode(query))
        headers = {NEXT_CURSOR: next_cursor, "Link": f'<{url}>; rel="next"'}
    return Response(items, headers=headers)
