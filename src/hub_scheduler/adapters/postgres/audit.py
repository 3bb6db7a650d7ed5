"""`AuditLog` on PostgreSQL: an ``audit`` table, newest first; entries older than the
retention are dropped as new ones are written."""

from __future__ import annotations

from typing import Any, Final, LiteralString

import attrs
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from hub_scheduler.adapters.postgres.codec import jsonable, make_cursor, parse_cursor, utc
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.domain.ports import AuditEntry, Page

COLUMNS: Final[LiteralString] = (
    "id, seq, at, actor, roles, action, target, outcome, request_id, client, before, after, "
    "detail, channel"
)


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(jsonable(value))


def _entry(row: DictRow) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=utc(row["at"]),
        actor=row["actor"],
        roles=tuple(row["roles"]),
        action=row["action"],
        target=row["target"],
        outcome=row["outcome"],
        request_id=row["request_id"],
        client=row["client"],
        before=row["before"],
        after=row["after"],
        detail=row["detail"],
        channel=row["channel"],
    )


@attrs.define
class PostgresAuditLog:
    """The admin audit trail of one hub."""

    store: PostgresStore

    async def record(self, entry: AuditEntry) -> None:
        """See `AuditLog.record`."""
        await self.store.execute(
            "audit",
            self.store.q(
                "WITH e AS (INSERT INTO {s}.audit ({columns}) VALUES (%(id)s, "
                "nextval(%(seq)s::regclass), %(at)s, %(actor)s, %(roles)s, %(action)s, %(target)s, "
                "%(outcome)s, %(request_id)s, %(client)s, %(before)s, %(after)s, %(detail)s, "
                "%(channel)s) ON CONFLICT (id) DO NOTHING) "
                "DELETE FROM {s}.audit WHERE at < %(oldest)s",
                columns=COLUMNS,
            ),
            {
                "id": entry.id,
                "seq": self.store.name("hub_seq"),
                "at": entry.at,
                "actor": entry.actor,
                "roles": list(entry.roles),
                "action": entry.action,
                "target": entry.target,
                "outcome": entry.outcome,
                "request_id": entry.request_id,
                "client": entry.client,
                "before": _json(entry.before),
                "after": _json(entry.after),
                "detail": entry.detail,
                "channel": entry.channel,
                "oldest": entry.at - self.store.retention,
            },
        )

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[AuditEntry]:
        """See `AuditLog.list`."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, Any] = {"n": limit + 1}
        after = "true"
        if cursor:
            params["at"], params["seq"] = parse_cursor(cursor)
            after = "(at, seq) < (%(at)s, %(seq)s)"
        query = self.store.q(
            "SELECT {columns} FROM {s}.audit WHERE {after} ORDER BY at DESC, seq DESC LIMIT %(n)s",
            columns=COLUMNS,
            after=after,
        )
        rows = await self.store.fetch("audit", query, params)
        items = rows[:limit]
        next_cursor = (
            make_cursor(utc(items[-1]["at"]), items[-1]["seq"]) if len(rows) > limit else None
        )
        return Page(tuple(_entry(r) for r in items), next_cursor)
