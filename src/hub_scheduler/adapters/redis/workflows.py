"""`Workflows` on Redis: each document a hash (``doc``, ``ver``), an index by creation, and
the events sorted set the queue's scripts write to (`workflow_event` in lua/common.lua).

Documents expire with the retention after their last save, like finished runs."""

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

#: KEYS: the document, the index, the events. ARGV: id, doc, created ms, retention ms.
_CREATE = """
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'ver', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[1])
"""

#: KEYS: the document. ARGV: expected version, doc, retention ms. 1 when saved.
_SAVE = """
if redis.call('HGET', KEYS[1], 'ver') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'ver', tonumber(ARGV[1]) + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


@attrs.define
class RedisWorkflows:
    """See `Workflows`."""

    store: RedisStore = attrs.field(repr=False)

    def _retention_ms(self) -> int:
        return max(1, self.store.retention // _MS)

    async def create(self, workflow: Workflow, now: datetime) -> None:
        """See `Workflows.create`."""
        keys = self.store.keys
        try:
            await self.store.client.eval(
                _CREATE, 3, keys.workflow(workflow.id), keys.workflows, keys.workflow_events,
                workflow.id, dumps(workflow), to_ms(now), self._retention_ms(),
            )  # fmt: skip
        except RedisError as exc:
            raise BackendUnavailableError("workflow create", type(exc).__name__) from exc

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
        """See `Workflows.save` (one Lua call: compare the version, write)."""
        try:
            saved = await self.store.client.eval(
                _SAVE, 1, self.store.keys.workflow(workflow.id),
                str(version), dumps(workflow), self._retention_ms(),
            )  # fmt: skip
        except RedisError as exc:
            raise BackendUnavailableError("workflow save", type(exc).__name__) from exc
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
