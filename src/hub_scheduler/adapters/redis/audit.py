"""`AuditLog` on Redis: one sorted set of versioned JSON entries, scored by time."""

from __future__ import annotations

import json

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.codec import from_ms, to_ms
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.ports import AuditEntry, Page


def _encode(entry: AuditEntry) -> str:
    return json.dumps(
        {
            "v": 1,
            "id": entry.id,
            "at": to_ms(entry.at),
            "actor": entry.actor,
            "roles": list(entry.roles),
            "action": entry.action,
            "target": entry.target,
            "outcome": entry.outcome,
            "request_id": entry.request_id,
            "client": entry.client,
            "before": entry.before,
            "after": entry.after,
            "detail": entry.detail,
            "channel": entry.channel,
        },
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def _decode(text: str) -> AuditEntry:
    data = json.loads(text)
    return AuditEntry(
        id=data["id"],
        at=from_ms(data["at"]),
        actor=data["actor"],
        roles=tuple(data["roles"]),
        action=data["action"],
        target=data["target"],
        outcome=data["outcome"],
        request_id=data.get("request_id"),
        client=data.get("client"),
        before=data.get("before"),
        after=data.get("after"),
        detail=data.get("detail"),
        channel=data.get("channel"),
    )


@attrs.define
class RedisAuditLog:
    """Audit entries newest first; entries older than the retention are dropped on write."""

    store: RedisStore

    @property
    def key(self) -> str:
        """The sorted set holding the trail."""
        return self.store.keys.audit

    async def record(self, entry: AuditEntry) -> None:
        """See `AuditLog.record`."""
        oldest = to_ms(entry.at - self.store.retention)
        try:
            async with self.store.client.pipeline(transaction=True) as pipe:
                pipe.zadd(self.key, {_encode(entry): to_ms(entry.at)})
                pipe.zremrangebyscore(self.key, "-inf", f"({oldest}")
                await pipe.execute()
        except RedisError as exc:
            raise BackendUnavailableError("audit", type(exc).__name__) from exc

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[AuditEntry]:
        """See `AuditLog.list`."""
        members, next_cursor = await self.store.page_desc(self.key, cursor, limit)
        return Page(tuple(_decode(m) for m in members), next_cursor)
