"""Path and query parameters shared by the routes, with their limits."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page.")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        max_length=4096,
        # A store's own cursor: digits bounded so that both numbers fit a 64-bit integer, as
        # every store needs; or a sharded backend's, which holds one of those per shard
        # (base64 after "s1."). The store checks what is inside.
        pattern=r"^(-?[0-9]{1,18}:[0-9]{1,18}|s1\.[A-Za-z0-9_-]{1,4000})$",
        description="The `next_cursor` of the previous page.",
    ),
]
Name = Annotated[str, PathParameter(max_length=100, description="A registered job's name.")]
#: ``GET /jobs/{name}``: a job name (see `validate_job_name`), never one of the words that
#: ``/jobs/`` serves itself (the schema says so, so clients and fuzzers never mix them up).
JobPath = Annotated[
    str,
    PathParameter(
        max_length=100,
        pattern=r"^(?!(?:dlq|history|metrics)$)[A-Za-z][A-Za-z0-9_.:-]*$",
        description="A registered job's name.",
    ),
]
Id = Annotated[str, PathParameter(max_length=100)]
JobFilter = Annotated[str | None, QueryParameter(max_length=100, description="Only this job.")]
