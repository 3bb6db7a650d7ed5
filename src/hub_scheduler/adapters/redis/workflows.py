"""`Workflows` on Redis: each document a hash (``doc``, ``ver``), an index by creation, and
the events sorted set the queue's scripts write to (`workflow_event` in lua/common.lua);
creating and saving are scripts of their own (lua/workflow_create.lua, workflow_save.lua).

Documents expire with the retention after their last save (finished runs are removed by the
workers' clean after the retention instead, being indexed by time)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.codec import to_ms, to_text
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.adapters.workflow_json import dumps, loads
from hub_scheduler.domain.errors import BackendUnavailableError, WorkflowNotFoundError
from hub_scheduler.domain.ports import Page
from hub_scheduler.domain.workflow import Workflow

_MS = timedelta(milliseconds=1)


@attrs.define
class RedisWorkflows:
    """See `Workflows`."""

    store: RedisStore = attrs.field(repr=False)

    def _retention_ms(self) -> int:
        return max(1, self.store.retention // _MS)

    async def create(self, workflow: Workflow, now: datetime) -> None:
        """See `Workflows.create`."""
        await self.store.run(
            "workflow_create", workflow.id, dumps(workflow), to_ms(now), self._retention_ms()
        )

    async def get(self, workflow_id: str) -> tuple[Workflow, int]:
        """See `Workflows.get`."""
        try:
            doc, ver = await self.store.client.hmget(
                self.store.keys.workflow(workflow_id), ["doc", "ver"]
            )
        except RedisError as exc:
            raise BackendUnavailableError("workflow get", type(exc).__name__) from exc
        if doc is None or ver is None:
            raise WorkflowNotFoundError(workflow_id)
        return loads(doc), int(ver)

    async def save(self, workflow: Workflow, version: int) -> bool:
        """See `Workflows.save` (one script: compare the version, write)."""
        saved = await self.store.run(
            "workflow_save", workflow.id, str(version), dumps(workflow), self._retention_ms()
        )
        return bool(int(saved))

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Workflow]:
        """See `Workflows.list` (expired documents are skipped)."""
        ids, next_cursor = await self.store.page_desc(self.store.keys.workflows, cursor, limit)
        try:
            async with self.store.client.pipeline(transaction=False) as pipe:
                for workflow_id in ids:
                    pipe.hget(self.store.keys.workflow(workflow_id), "doc")
                docs = await pipe.execute()
        except RedisError as exc:
            raise BackendUnavailableError("workflow list", type(exc).__name__) from exc
        return Page(tuple(loads(doc) for doc in docs if doc is not None), next_cursor)

    async def events(self, before: datetime, limit: int = 100) -> builtins.list[str]:
        """See `Workflows.events`."""
        try:
            ids = await self.store.client.zrangebyscore(
                self.store.keys.workflow_events, "-inf", f"({to_ms(before)}", start=0, num=limit
            )
        except RedisError as exc:
            raise BackendUnavailableError("workflow events", type(exc).__name__) from exc
        return [to_text(cast("bytes", i)) for i in ids]

    async def ack(self, events: Sequence[str]) -> None:
        """See `Workflows.ack`."""
        if not events:
            return
        try:
            await self.store.client.zrem(self.store.keys.workflow_events, *events)
        except RedisError as exc:
            raise BackendUnavailableError("workflow ack", type(exc).__name__) from exc
