"""`ResultStore` on Redis: taskiq-redis's result backend (`taskiq_results`), loaded on first
use, so that a process that never stores a result (the CLI, the API) never imports taskiq
(about 0.2 s of CPU, aiohttp included)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.domain.model import Progress, StoredResult

if TYPE_CHECKING:
    from hub_scheduler.adapters.redis.taskiq_results import TaskiqRedisResults


@attrs.define
class RedisResults:
    """`ResultStore` on Redis (see `taskiq_results.TaskiqRedisResults`)."""

    store: RedisStore = attrs.field(repr=False)
    _inner: TaskiqRedisResults | None = attrs.field(default=None, init=False, repr=False)

    def _store(self) -> TaskiqRedisResults:
        if self._inner is None:
            # Imported here: taskiq and aiohttp cost a CLI command 0.2 s it does not need.
            from hub_scheduler.adapters.redis.taskiq_results import (  # noqa: PLC0415
                TaskiqRedisResults,
            )

            self._inner = TaskiqRedisResults(self.store)
        return self._inner

    async def set_result(self, run_id: str, value: Any) -> None:
        """See `ResultStore.set_result`."""
        await self._store().set_result(run_id, value)

    async def result(self, run_id: str) -> StoredResult | None:
        """See `ResultStore.result`."""
        return await self._store().result(run_id)

    async def set_progress(self, run_id: str, progress: Progress) -> None:
        """See `ResultStore.set_progress`."""
        await self._store().set_progress(run_id, progress)

    async def progress(self, run_id: str) -> Progress | None:
        """See `ResultStore.progress`."""
        return await self._store().progress(run_id)
