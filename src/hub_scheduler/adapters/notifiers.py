"""Notifiers: tell people when a run is dead-lettered, a schedule stopped firing, or an
alert fires and resolves (`AlertChannel`).

`LoggingNotifier` writes log records, `WebhookNotifier` POSTs JSON, `AppriseNotifier` sends
through apprise (the ``alerts`` extra): email, Slack, Microsoft Teams, Telegram, Twilio SMS
and the ~100 other services apprise knows, each configured by one URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from hub_scheduler.domain.alerts import (
    Alert,
    AlertStatus,
    Condition,
    Notice,
    NoticeKind,
    Route,
    Rule,
    Severity,
    parse_routes,
    redacted_channel,
)
from hub_scheduler.domain.errors import ValidationError
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


def notice_summary(notice: Notice) -> dict[str, object]:
    """A notice as JSON (the webhook's body, the log record's extra fields): no secret, no
    payload."""
    alert = notice.alert
    condition = alert.condition
    return {
        "event": f"alert.{notice.kind.value}",
        "alert": alert.key,
        "rule": condition.rule.value,
        "subject": condition.subject,
        "severity": alert.severity.value,
        "summary": condition.summary,
        "details": dict(condition.details),
        "job": condition.job,
        "link": condition.link,
        "since": alert.since.isoformat(),
    }


_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING,
           Severity.CRITICAL: logging.ERROR}  # fmt: skip


class LoggingNotifier:
    """The default notifier: one ERROR record on ``hub_scheduler.alerts`` per dead run and
    per overdue schedule; an alert notice at its severity's level (ERROR for critical), a
    resolution at INFO."""

    async def send(self, notice: Notice) -> None:
        """Log the notice's title and summary, with its facts as extra fields."""
        level = (
            logging.INFO if notice.kind is NoticeKind.RESOLVED else _LEVELS[notice.alert.severity]
        )
        summary = notice_summary(notice)
        logger.log(
            level, "%s — %s", notice.title, notice.alert.condition.summary,
            extra={"alert_" + k if k in {"event", "details"} else k: v
                   for k, v in summary.items() if k != "summary"},
        )  # fmt: skip

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

    async def send(self, notice: Notice) -> None:
        """Schedule a POST of the alert notice (`notice_summary`), and return at once."""
        self._send(notice_summary(notice))

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
            what = (
                f"dead run {body['run_id']}" if "run_id" in body else f"alert {body.get('alert')}"
            )
            logger.error("webhook for %s not delivered", what)
        finally:
            if self.client is None:
                await client.aclose()

    async def drain(self) -> None:
        """Wait for deliveries in flight (for shutdown and tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


# --- apprise ------------------------------------------------------------------------------


@attrs.frozen
class Delivery:
    """One notice as `AppriseNotifier` sent it to one channel (or, in test mode, would have).

    Attributes:
        channel: the route as it may be shown (`Route.shown`: no secret).
        title: the message's title.
        body: its text.
        notify_type: apprise's type: ``failure``, ``warning``, ``info`` or ``success``.
        notice: what it says.
    """

    channel: str
    title: str
    body: str
    notify_type: str
    notice: Notice


def _notify_type(notice: Notice) -> str:
    if notice.kind is NoticeKind.RESOLVED:
        return "success"
    return {Severity.CRITICAL: "failure", Severity.WARNING: "warning"}.get(
        notice.alert.severity, "info"
    )


def _dead_notice(run: Run) -> Notice:
    error = f"{run.error.type}: {run.error.message}" if run.error else "unknown error"
    condition = Condition(
        Rule.RUN_DEAD, run.job, f"run {run.id} of job {run.job} is dead after {run.attempt} "
        f"attempts: {error}", details={"run_id": run.id, "attempts": run.attempt,
                                       "error": error},
        job=run.job, event_id=run.id,
    )  # fmt: skip
    now = run.finished_at or datetime.now(UTC)
    return Notice(Alert(condition, AlertStatus.EVENT, now, fired_at=now), NoticeKind.FIRING)


def _check_url(url: str) -> None:
    import apprise  # noqa: PLC0415 - the optional extra, imported by its users only

    if not apprise.Apprise().add(url):
        raise ValidationError(
            f"apprise does not accept the alert URL {redacted_channel(url)} (unknown service "
            "or a malformed URL; see apprise's list of services)"
        )


class _Scrub(logging.Filter):
    """Hides the channel URLs' secrets in what apprise logs (its failures may quote them)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        scrubbed = text
        for secret in self.secrets:
            scrubbed = scrubbed.replace(secret, "***")
        if scrubbed != text:
            record.msg, record.args = scrubbed, None
        return True


def _secret_parts(url: str) -> list[str]:
    """The parts of a notification URL that may be secrets: all of it after the scheme, and
    each piece of it between the separators (tokens, passwords, keys) of 4 characters or more."""
    _, _, rest = url.partition("://")
    pieces = [rest, url]
    for separator in "/?&=:@#":
        rest = rest.replace(separator, " ")
    pieces += [p for p in rest.split() if len(p) >= 4]
    return pieces


@attrs.define
class AppriseNotifier:
    """Sends alert notices through apprise, each to the channels whose route takes it.

    Build it with `from_urls`. Delivery runs in the background (apprise runs its blocking
    plugins in threads) and never raises into the caller; a failed delivery is logged with
    the channel's scheme only. In `test_mode` nothing is sent: each delivery is appended to
    `sent` instead (apprise still checks every URL when the notifier is built).

    Attributes:
        routes: the channels and what they take.
        test_mode: record instead of sending.
        sent: what was delivered (or, in test mode, would have been), in order.
    """

    routes: Sequence[Route]
    test_mode: bool = False
    sent: list[Delivery] = attrs.field(factory=list)
    _pending: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        for route in self.routes:
            _check_url(route.url)
        scrub = _Scrub([part for route in self.routes for part in _secret_parts(route.url)])
        logging.getLogger("apprise").addFilter(scrub)

    @classmethod
    def from_urls(cls, urls: str | Sequence[str], *, test_mode: bool = False) -> AppriseNotifier:
        """A notifier for ``[TAGS=]URL`` entries (whitespace-separated in one string, or a
        list); see `Route` for the tags. Raises `ValidationError` for a URL apprise does not
        accept (naming its scheme only)."""
        return cls(parse_routes(urls), test_mode=test_mode)

    @property
    def channels(self) -> list[str]:
        """The routes as they may be shown (no secret)."""
        return [route.shown for route in self.routes]

    async def send(self, notice: Notice) -> None:
        """Deliver `notice` to every channel whose route takes it; returns at once."""
        for route in self.routes:
            if route.takes(notice):
                delivery = Delivery(
                    route.shown, notice.title, notice.body, _notify_type(notice), notice
                )
                if self.test_mode:
                    self.sent.append(delivery)
                else:
                    self._start(route, delivery)

    async def run_dead(self, run: Run) -> None:
        """As `send`, for a run dead-lettered (when used as the hub's `Notifier`)."""
        await self.send(_dead_notice(run))

    def _start(self, route: Route, delivery: Delivery) -> None:
        task = asyncio.create_task(self._deliver(route, delivery))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, route: Route, delivery: Delivery) -> None:
        import apprise  # noqa: PLC0415 - the optional extra

        sender = apprise.Apprise()
        sender.add(route.url)
        notify: Any = sender.async_notify
        try:
            ok = await notify(
                body=delivery.body, title=delivery.title, notify_type=delivery.notify_type
            )
        except Exception as exc:  # apprise's plugins may raise anything
            logger.error("alert to %s failed: %s", delivery.channel, type(exc).__name__)  # noqa: TRY400 - the traceback may quote the URL
            return
        if ok:
            self.sent.append(delivery)
        else:
            logger.error("alert to %s was not delivered", delivery.channel)

    async def drain(self) -> None:
        """Wait for deliveries in flight (for shutdown and tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
