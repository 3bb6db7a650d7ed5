"""``/alerts``: alerts active and recent, and muting one (an audited action)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from pydantic import BaseModel, ConfigDict, Field

from hub_scheduler.domain.admin import Action
from hub_scheduler.domain.alerts import Alert, AlertBook
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.security import can_act, can_read


def _iso(instant: Any) -> str | None:
    return None if instant is None else instant.isoformat().replace("+00:00", "Z")


class _Strict(BaseModel):
    # As the other views: built on first use (see `schemas`).
    model_config = ConfigDict(extra="forbid", defer_build=True)


class AlertView(_Strict):
    """One alert: what it watches, how bad it is, where it is in its life."""

    key: str = Field(description="rule:subject, what POST /alerts/mute takes")
    rule: str
    subject: str
    severity: str = Field(description="info, warning or critical")
    status: str = Field(description="pending, firing, resolved or event")
    summary: str
    details: dict[str, Any]
    job: str | None
    link: str | None
    since: str
    fired_at: str | None
    resolved_at: str | None
    notified_at: str | None
    suppressed: str | None = Field(description="why no notice went out: muted, flapping, ...")

    @classmethod
    def from_domain(cls, alert: Alert) -> AlertView:
        """The view of one alert."""
        c = alert.condition
        return cls(
            key=alert.key, rule=c.rule.value, subject=c.subject, severity=alert.severity.value,
            status=alert.status.value, summary=c.summary, details=dict(c.details), job=c.job,
            link=c.link, since=_iso(alert.since) or "", fired_at=_iso(alert.fired_at),
            resolved_at=_iso(alert.resolved_at), notified_at=_iso(alert.notified_at),
            suppressed=alert.suppressed,
        )  # fmt: skip


class MuteView(_Strict):
    """A mute: an alert key or a rule name, and when it ends."""

    target: str
    until: str


class AlertsView(_Strict):
    """Alerts firing or pending, resolved ones and events newest first, and mutes."""

    active: list[AlertView]
    recent: list[AlertView]
    mutes: list[MuteView]

    @classmethod
    def from_domain(cls, book: AlertBook) -> AlertsView:
        """The view of the alert book."""
        return cls(
            active=[AlertView.from_domain(a) for a in book.active.values()],
            recent=[AlertView.from_domain(a) for a in book.recent],
            mutes=[MuteView(target=k, until=_iso(v) or "") for k, v in sorted(book.mutes.items())],
        )


class MuteRequest(_Strict):
    """Mute an alert (``rule:subject``) or a rule (``run_dead``) for some minutes (0 unmutes)."""

    target: str = Field(min_length=1, max_length=300)
    minutes: float = Field(ge=0, le=60 * 24 * 90, allow_inf_nan=False)


class AlertsController(Controller):
    """``/alerts``."""

    path = "/alerts"
    tags = ("alerts",)
    guards = (can_read,)

    @get("/", responses=documented())
    async def list_alerts(self, admin: AdminDep) -> AlertsView:
        """Alerts active and recent, and the mutes in force."""
        return AlertsView.from_domain(await admin.alerts())

    @post(
        "/mute",
        guards=[can_act],
        opt=audited(Action.ALERT_MUTE),
        status_code=HTTP_200_OK,
        responses=documented(400),
    )
    async def mute(self, admin: AdminDep, actor: ActorDep, data: JSONBody[MuteRequest]) -> MuteView:
        """Mute an alert or a rule: it is still recorded, but no notice is sent."""
        until = await admin.mute_alert(actor, data.target, timedelta(minutes=data.minutes))
        return MuteView(target=data.target, until=_iso(until) or "")
