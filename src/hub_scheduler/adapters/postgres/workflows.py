"""`Workflows` on PostgreSQL: the ``workflows`` table (one jsonb document per workflow, with
its version) and ``workflow_events``, which triggers on ``runs`` fill (migration 0009)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
from psycopg.types.json import Jsonb

from hub_scheduler.adapters.postgres.codec import make_cursor, parse_cursor, utc
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.adapters.workflow_json import workflow_from_json, workflow_to_json
from hub_scheduler.domain.errors import WorkflowNotFoundError
from hub_scheduler.domain.ports import Page
from hub_scheduler.domain.workflow import Workflow


@attrs.define
class PostgresWorkflows:
    """See `Workflows`."""

    store: PostgresStore

    async def create(self, workflow: Workflow, now: datetime) -> None:
        """See `Workflows.create` (one statement: the row and its event)."""
        await self.store.execute(
            "workflow create",
            self.store.q(
                "WITH w AS (INSERT INTO {s}.workflows (id, created_at, saved_at, version, doc) "
                "VALUES (%(id)s, %(now)s, %(now)s, 1, %(doc)s)) "
                "INSERT INTO {s}.workflow_events (id, at) VALUES (%(id)s, %(now)s) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            {"id": workflow.id, "now": now, "doc": Jsonb(workflow_to_json(workflow))},
        )

    async def get(self, workflow_id: str) -> tuple[Workflow, int]:
        """See `Workflows.get`."""
        row = await self.store.fetch_one(
            "workflow get",
            self.store.q("SELECT doc, version FROM {s}.workflows WHERE id = %s"),
            [workflow_id],
        )
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        return workflow_from_json(row["doc"]), row["version"]

    async def save(self, workflow: Workflow, version: int) -> bool:
        """See `Workflows.save` (an UPDATE that must still find `version`)."""
        changed = await self.store.execute(
            "workflow save",
            self.store.q(
                "UPDATE {s}.workflows SET doc = %(doc)s, version = version + 1, "
                "saved_at = %(now)s WHERE id = %(id)s AND version = %(version)s"
            ),
            {
                "id": workflow.id,
                "doc": Jsonb(workflow_to_json(workflow)),
                "now": self.store.clock.now(),
                "version": version,
            },
        )
        return changed == 1

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Workflow]:
        """See `Workflows.list`."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, Any] = {"n": limit + 1}
        after = "true"
        if cursor:
            params["at"], params["seq"] = parse_cursor(cursor)
            after = "(created_at, seq) < (%(at)s, %(seq)s)"
        rows = await self.store.fetch(
            "workflow list",
            self.store.q(
                "SELECT doc, created_at, seq FROM {s}.workflows WHERE {after} "
                "ORDER BY created_at DESC, seq DESC LIMIT %(n)s",
                after=after,
            ),
            params,
        )
        items = rows[:limit]
        more = len(rows) > limit
        next_cursor = make_cursor(utc(items[-1]["created_at"]), items[-1]["seq"]) if more else None
        return Page(tuple(workflow_from_json(r["doc"]) for r in items), next_cursor)

    async def events(self, before: datetime, limit: int = 100) -> builtins.list[str]:
        """See `Workflows.events`."""
        rows = await self.store.fetch(
            "workflow events",
            self.store.q(
                "SELECT id FROM {s}.workflow_events WHERE at < %s ORDER BY at, id LIMIT %s"
            ),
            [before, limit],
        )
        return [r["id"] for r in rows]

    async def ack(self, events: Sequence[str]) -> None:
        """See `Workflows.ack`."""
        if events:
            await self.store.execute(
                "workflow ack",
                self.store.q("DELETE FROM {s}.workflow_events WHERE id = ANY(%s::text[])"),
                [list(events)],
            )
