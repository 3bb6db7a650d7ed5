"""`ResultStore` on taskiq-redis's result backend, in the hub's namespace.

taskiq-redis stores a taskiq result under ``{prefix_str}:{task_id}`` and its progress under
that key plus ``__progress``, each with an expiry. Here `prefix_str` is the hub's hash-tagged
prefix (``{hub}:result``), so on a Cluster the keys share the hub's slot; the expiry is the
history retention; and the serializer is versioned JSON (taskiq-redis defaults to pickle,
which is never used here). The backend borrows the hub's own connections.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq.abc.serializer import TaskiqSerializer
from taskiq.depends.progress_tracker import TaskProgress
from taskiq.result import TaskiqResult
from taskiq_redis import RedisAsyncClusterResultBackend, RedisAsyncResultBackend
from taskiq_redis.exceptions import ResultIsMissingError

from hub_scheduler.adapters.redis.connection import RedisClient, is_cluster
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.domain.errors import BackendUnavailableError, ResultError
from hub_scheduler.domain.model import Progress, StoredResult, encode_result

#: The version of the stored layout.
RESULT_VERSION = 1


class VersionedJSONSerializer(TaskiqSerializer):
    """JSON wrapped as ``{"v": 1, "data": ...}``; refuses any other version."""

    def dumpb(self, value: Any) -> bytes:
        """Encode `value` (already JSON-ready)."""
        return json.dumps(
            {"v": RESULT_VERSION, "data": value}, separators=(",", ":"), allow_nan=False
        ).encode()

    def loadb(self, value: bytes) -> Any:
        """Decode what `dumpb` wrote; `ValueError` for anything else."""
        decoded = json.loads(value)
        if not isinstance(decoded, dict) or decoded.get("v") != RESULT_VERSION:
            raise ValueError(f"not a version-{RESULT_VERSION} hub result")
        return decoded["data"]


class _Borrowed:
    """The hub's Cluster client as taskiq-redis's cluster backend uses it (``async with
    self.redis as redis``), without closing it at the end of each call."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client

    async def __aenter__(self) -> RedisClient:
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def taskiq_backend(
    client: RedisClient, prefix_str: str, retention: timedelta
) -> RedisAsyncResultBackend[Any] | RedisAsyncClusterResultBackend[Any]:
    """taskiq-redis's result backend on `client`'s connections."""
    expiry = max(1, int(retention.total_seconds()))
    serializer = VersionedJSONSerializer()
    if is_cluster(client):
        cluster: RedisAsyncClusterResultBackend[Any] = RedisAsyncClusterResultBackend(
            "redis://unused:0",  # never connected: replaced by the hub's client just below
            result_ex_time=expiry,
            serializer=serializer,
            prefix_str=prefix_str,
        )
        cluster.redis = _Borrowed(client)  # type: ignore[assignment]
        return cluster
    backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
        "redis://unused:0",  # a pool is made from it, never connected: replaced below
        result_ex_time=expiry,
        serializer=serializer,
        prefix_str=prefix_str,
    )
    assert isinstance(client, Redis)
    backend.redis_pool = client.connection_pool  # type: ignore[assignment]
    return backend


@attrs.define
class TaskiqRedisResults:
    """`ResultStore` on Redis, through taskiq-redis's `RedisAsyncResultBackend`."""

    store: RedisStore = attrs.field(repr=False)
    backend: RedisAsyncResultBackend[Any] | RedisAsyncClusterResultBackend[Any] = attrs.field(
        init=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        prefix = f"{self.store.keys.base}:result"
        self.backend = taskiq_backend(self.store.client, prefix, self.store.retention)

    async def set_result(self, run_id: str, value: Any) -> None:
        """See `ResultStore.set_result`."""
        encoded = json.loads(encode_result(run_id, value, self.store.payload_limit))
        result: TaskiqResult[Any] = TaskiqResult(
            is_err=False,
            log=None,
            return_value=encoded,
            execution_time=0.0,
            labels={"stored_at": _ms(self.store.clock.now())},
        )
        try:
            await self.backend.set_result(run_id, result)
        except RedisError as exc:
            raise BackendUnavailableError("set result", type(exc).__name__) from exc

    async def result(self, run_id: str) -> StoredResult | None:
        """See `ResultStore.result`."""
        try:
            found = await self.backend.get_result(run_id)
        except ResultIsMissingError:
            return None
        except RedisError as exc:
            raise BackendUnavailableError("get result", type(exc).__name__) from exc
        return StoredResult(found.return_value, _at(found.labels.get("stored_at", 0)))

    async def set_progress(self, run_id: str, progress: Progress) -> None:
        """See `ResultStore.set_progress`."""
        meta = {
            "at": _ms(progress.at),
            "fraction": progress.fraction,
            "message": progress.message,
            "meta": json.loads(encode_result(run_id, progress.meta, self.store.payload_limit)),
        }
        try:
            await self.backend.set_progress(run_id, TaskProgress(state=progress.state, meta=meta))
        except RedisError as exc:
            raise BackendUnavailableError("set progress", type(exc).__name__) from exc
        except ValueError as exc:  # pragma: no cover - encode_result checked it
            raise ResultError(run_id, str(exc)) from None

    async def progress(self, run_id: str) -> Progress | None:
        """See `ResultStore.progress`."""
        try:
            found = await self.backend.get_progress(run_id)
        except RedisError as exc:
            raise BackendUnavailableError("get progress", type(exc).__name__) from exc
        if found is None or not isinstance(found.meta, dict):
            return None
        meta = found.meta
        return Progress(
            at=_at(meta.get("at", 0)),
            fraction=meta.get("fraction"),
            message=str(meta.get("message", "")),
            state=str(found.state.value if hasattr(found.state, "value") else found.state),
            meta=meta.get("meta"),
        )
