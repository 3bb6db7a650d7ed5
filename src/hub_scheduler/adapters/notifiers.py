"""Notifiers: tell people when a run is dead-lettered, or a schedule stopped firing."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

import attrs

from hub_scheduler.domain.model import Run
from hub_scheduler.domain.ports import OverdueSchedule

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("hub_scheduler.alerts")


def _summary(run: Run) -> dict[str, object]:
    return {
        "event": "run.dead",
        "run_id": run.id,
        "job": run.job,
        "attempts": run.attempt,
        "enqueued_at": run.enqueued_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": {"type": run.error.type, "message": run.error.message} if run.error else None,
    }


def _overdue_summary(overdue: OverdueSchedule) -> dict[str, object]:
    return {
        "event": "schedule.overdue",
        "schedule_id": overdue.schedule_id,
        "job": overdue.job,
        "slot": overdue.slot.isoformat(),
        "overdue_seconds": overdue.overdue.total_seconds(),
    }


class LoggingNotifier:
    """The default notifier: one ERROR record on ``hub_scheduler.alerts`` per dead run and
    per overdue schedule."""

    async def schedule_overdue(self, overdue: OverdueSchedule) -> None:
        """Log that a schedule's slot passed its grace unfired."""
        logger.error(
            "schedule %s of job %s is overdue: its slot %s passed %.0fs ago and no scheduler "
            "fired it",
            overdue.schedule_id, overdue.job, overdue.slot.isoformat(),
            overdue.overdue.total_seconds(), extra=_overdue_summary(overdue),
        )  # fmt: skip

    async def run_dead(self, run: Run) -> None:
        """Log the dead run with its job, attempts and last error."""
        error = f"{run.error.type}: {run.error.message}" if run.error else "unknown error"
        logger.error(
            "run %s of job %s is dead after %d attempts: %s", run.id, run.job, run.attempt, error
        )


@attrs.define
class WebhookNotifier:
    """POSTs a JSON summary of each dead run to `url`, in the background.

    The worker never waits for it: delivery runs as its own task, with a timeout per try
    and a few retries with backoff; a final failure is logged. The body carries no payload
    (payloads may hold personal data); fetch the run through the API for details.
    """

    url: str
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    client: httpx.AsyncClient | None = None
    _pending: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)

    async def run_dead(self, run: Run) -> None:
        """Schedule the POST and return at once."""
        self._send(_summary(run))

    async def schedule_overdue(self, overdue: OverdueSchedule) -> None:
        """Schedule a POST saying the schedule is overdue, and return at once."""
        self._send(_overdue_summary(overdue))

    def _send(self, body: dict[str, object]) -> None:
        task = asyncio.create_task(self._deliver(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, body: dict[str, object]) -> None:
        import httpx  # noqa: PLC0415 - only webhook users pay for importing it

        client = self.client or httpx.AsyncClient()
        try:
            for attempt in range(1, self.attempts + 1):
                try:
                    response = await client.post(
                        self.url,
                        content=json.dumps(body),
                        headers={"content-type": "application/json"},
                        timeout=self.timeout,
                    )
                    if response.status_code < 500:
                        return
                except httpx.HTTPError as exc:
                    logger.debug("webhook try %d failed: %s", attempt, type(exc).__name__)
                if attempt < self.attempts:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            logger.error("webhook for dead run %s not delivered", body["run_id"])
        finally:
            if self.client is None:
                await client.aclose()

    async def drain(self) -> None:
        """Wait for deliveries in flight (for shutdown and tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
