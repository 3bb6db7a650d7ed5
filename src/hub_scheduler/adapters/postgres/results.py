"""`ResultStore` on PostgreSQL: one ``run_results`` row per run, deleted with the run."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs
from psycopg.types.json import Jsonb

from hub_scheduler.adapters.postgres.codec import utc
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.domain.model import Progress, StoredResult, encode_result

#: The version of the stored layouts.
RESULT_VERSION = 1


@attrs.define
class PostgresResults:
    """Results and progress of one hub's runs (a run that does not exist stores nothing)."""

    store: PostgresStore

    async def set_result(self, run_id: str, value: Any) -> None:
        """See `ResultStore.set_result`."""
        encoded = json.loads(encode_result(run_id, value, self.store.payload_limit))
        await self.store.execute(
            "set result",
            self.store.q(
                "INSERT INTO {s}.run_results (run_id, result, stored_at) "
                "SELECT id, %(result)s, %(at)s FROM {s}.runs WHERE id = %(id)s "
                "ON CONFLICT (run_id) DO UPDATE SET result = EXCLUDED.result, "
                "stored_at = EXCLUDED.stored_at"
            ),
            {
                "id": run_id,
                "result": Jsonb({"v": RESULT_VERSION, "value": encoded}),
                "at": self.store.clock.now(),
            },
        )

    async def result(self, run_id: str) -> StoredResult | None:
        """See `ResultStore.result`."""
        row = await self.store.fetch_one(
            "get result",
            self.store.q(
                "SELECT result, stored_at FROM {s}.run_results "
                "WHERE run_id = %s AND result IS NOT NULL"
            ),
            [run_id],
        )
        if row is None or row["result"].get("v") != RESULT_VERSION:
            return None
        return StoredResult(row["result"]["value"], utc(row["stored_at"]))

    async def set_progress(self, run_id: str, progress: Progress) -> None:
        """See `ResultStore.set_progress`."""
        meta = json.loads(encode_result(run_id, progress.meta, self.store.payload_limit))
        document = {
            "v": RESULT_VERSION,
            "at": progress.at.isoformat(),
            "fraction": progress.fraction,
            "message": progress.message,
            "state": progress.state,
            "meta": meta,
        }
        await self.store.execute(
            "set progress",
            self.store.q(
                "INSERT INTO {s}.run_results (run_id, progress) "
                "SELECT id, %(progress)s FROM {s}.runs WHERE id = %(id)s "
                "ON CONFLICT (run_id) DO UPDATE SET progress = EXCLUDED.progress"
            ),
            {"id": run_id, "progress": Jsonb(document)},
        )

    async def progress(self, run_id: str) -> Progress | None:
        """See `ResultStore.progress`."""
        row = await self.store.fetch_one(
            "get progress",
            self.store.q(
                "SELECT progress FROM {s}.run_results WHERE run_id = %s AND progress IS NOT NULL"
            ),
            [run_id],
        )
        if row is None or row["progress"].get("v") != RESULT_VERSION:
            return None
        doc = row["progress"]
        return Progress(
            at=datetime.fromisoformat(doc["at"]),
            fraction=doc.get("fraction"),
            message=doc.get("message", ""),
            state=doc.get("state", "STARTED"),
            meta=doc.get("meta"),
        )
