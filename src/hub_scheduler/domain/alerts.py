"""Alerts: conditions worth telling a person about, and their lifecycle, as pure functions.

A process that evaluates alerts (`hub_scheduler.runtime.alerts.AlertMonitor`) looks at the
store and reports what it sees as `Condition` values: one per rule and subject (a job, a
schedule, the queue) that holds now, and one-shot events (a run dead-lettered). `advance`
folds them into the `AlertBook`, the one record of every alert that all processes share, and
says which `Notice` to send: an alert fires once when its condition has held for the rule's
``for`` duration, and resolves once when it no longer holds. The book is stored with a
compare-and-set (`SharedStore.swap`), so of several processes evaluating the same store only
the one whose write lands sends the notices of that step; the others re-read the book and
find nothing left to send.

Repeats are held back: a muted rule or alert, an alert firing again within `AlertPolicy.
refire_after` of its last notice (flapping), and dead runs of one job beyond `AlertPolicy.
dead_per_job_per_hour` are recorded in the book without a notice.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from hub_scheduler.domain.errors import ValidationError
from hub_scheduler.domain.model import Priority
from hub_scheduler.domain.urls import MASK

if TYPE_CHECKING:
    from hub_scheduler.domain.ports import SharedStore

T = TypeVar("T")

#: Resolved alerts and events the book keeps, newest first.
RECENT_KEPT = 50
#: Dead runs the book remembers as already alerted.
SEEN_DEAD_KEPT = 1000


class Severity(enum.StrEnum):
    """How bad an alert is; channels subscribe from a severity up."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for critical."""
        return list(Severity).index(self)


class Rule(enum.StrEnum):
    """What an alert watches."""

    RUN_DEAD = "run_dead"
    FAILURE_RATE = "failure_rate"
    DLQ_GROWTH = "dlq_growth"
    QUEUE_PAUSED = "queue_paused"
    JOB_PAUSED = "job_paused"
    BACKEND_UNREACHABLE = "backend_unreachable"
    BACKEND_MEMORY = "backend_memory"
    SCHEDULE_OVERDUE = "schedule_overdue"
    NO_WORKER = "no_worker"


#: Each rule's severity.
SEVERITY: Mapping[Rule, Severity] = {
    Rule.RUN_DEAD: Severity.CRITICAL,
    Rule.FAILURE_RATE: Severity.WARNING,
    Rule.DLQ_GROWTH: Severity.WARNING,
    Rule.QUEUE_PAUSED: Severity.WARNING,
    Rule.JOB_PAUSED: Severity.INFO,
    Rule.BACKEND_UNREACHABLE: Severity.CRITICAL,
    Rule.BACKEND_MEMORY: Severity.WARNING,
    Rule.SCHEDULE_OVERDUE: Severity.CRITICAL,
    Rule.NO_WORKER: Severity.CRITICAL,
}


class AlertStatus(enum.StrEnum):
    """Where an alert is in its life."""

    PENDING = "pending"
    """The condition holds, not yet for the rule's ``for`` duration: nothing sent."""
    FIRING = "firing"
    RESOLVED = "resolved"
    EVENT = "event"
    """A one-shot alert (a dead run): sent once, never resolved."""


def _positive(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value > type(value)(0):
        raise ValidationError(f"alert policy {attribute.name} must be positive, got {value!r}")


@attrs.frozen
class AlertPolicy:
    """The thresholds of the rules.

    Attributes:
        failure_rate: a job alerts when more than this share of its finished attempts in the
            last hour failed (0.10: more than 10 %) ...
        failure_min_runs: ... and at least this many finished in that hour.
        dlq_growth: runs dead-lettered in the last hour (over every job) that make the
            dead-letter queue's growth an alert.
        paused_for: how long the queue or a job stays paused before it alerts.
        no_worker_for: how long runs wait with no live worker before it alerts.
        unreachable_for: how long the backend stays unreachable before it alerts.
        memory_ratio: the share of Redis's maxmemory in use that alerts.
        refire_after: an alert firing again this soon after its last notice is recorded
            but not sent (a flapping condition).
        dead_per_job_per_hour: dead-run notices sent per job per hour; more are recorded
            (and counted in the next one sent).
    """

    failure_rate: float = attrs.field(default=0.10, validator=_positive)
    failure_min_runs: int = attrs.field(default=10, validator=_positive)
    dlq_growth: int = attrs.field(default=10, validator=_positive)
    paused_for: timedelta = attrs.field(default=timedelta(minutes=15), validator=_positive)
    no_worker_for: timedelta = attrs.field(default=timedelta(minutes=1), validator=_positive)
    unreachable_for: timedelta = attrs.field(default=timedelta(seconds=30), validator=_positive)
    memory_ratio: float = attrs.field(default=0.9, validator=_positive)
    refire_after: timedelta = attrs.field(default=timedelta(minutes=5), validator=_positive)
    dead_per_job_per_hour: int = attrs.field(default=5, validator=_positive)

    def hold_for(self, rule: Rule) -> timedelta:
        """How long `rule`'s condition must hold before it fires (zero: at once)."""
        return {
            Rule.QUEUE_PAUSED: self.paused_for,
            Rule.JOB_PAUSED: self.paused_for,
            Rule.NO_WORKER: self.no_worker_for,
            Rule.BACKEND_UNREACHABLE: self.unreachable_for,
        }.get(rule, timedelta(0))


@attrs.frozen
class Condition:
    """What one evaluation found: `rule` holds for `subject` now (or, for an event, happened).

    Attributes:
        rule: the rule.
        subject: what it is about: a job name, a schedule id, ``queue``, ``backend``.
        summary: one line for a person.
        details: facts for the notice and the API (JSON values; never a secret).
        job: the job it concerns, if one.
        priority: that job's priority, for routing (`Route.high_priority`).
        link: where to look (the run in the dashboard).
        event_id: for a one-shot occurrence rather than a state that later clears (a dead
            run), its id: each is alerted once.
    """

    rule: Rule
    subject: str
    summary: str
    details: Mapping[str, Any] = attrs.field(factory=dict)
    job: str | None = None
    priority: Priority | None = None
    link: str | None = None
    event_id: str | None = None

    @property
    def event(self) -> bool:
        """A one-shot occurrence (it has an `event_id`)."""
        return self.event_id is not None

    @property
    def key(self) -> str:
        """``rule:subject``: the identity of the alert it raises."""
        return f"{self.rule.value}:{self.subject}"

    @property
    def severity(self) -> Severity:
        """The rule's severity."""
        return SEVERITY[self.rule]


@attrs.frozen
class Alert:
    """One alert as the book keeps it.

    Attributes:
        condition: what it is about (as last seen while it held).
        status: pending, firing, resolved, or event.
        since: when its condition was first seen holding.
        fired_at: when it fired (None while pending).
        resolved_at: when it resolved.
        notified_at: when its last notice went out (None: none did, as when muted).
        suppressed: why its last transition sent no notice (``muted``, ``flapping``,
            ``rate limited``), else None.
    """

    condition: Condition
    status: AlertStatus
    since: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    notified_at: datetime | None = None
    suppressed: str | None = None

    @property
    def key(self) -> str:
        """``rule:subject``."""
        return self.condition.key

    @property
    def severity(self) -> Severity:
        """The rule's severity."""
        return self.condition.severity


class NoticeKind(enum.StrEnum):
    """What a notice says about its alert."""

    FIRING = "firing"
    RESOLVED = "resolved"


@attrs.frozen
class Notice:
    """A message to send: `alert` fired (or happened), or resolved."""

    alert: Alert
    kind: NoticeKind

    @property
    def title(self) -> str:
        """``[CRITICAL] run_dead: syncXero`` or ``[RESOLVED] no_worker: queue``."""
        label = "RESOLVED" if self.kind is NoticeKind.RESOLVED else self.alert.severity.upper()
        condition = self.alert.condition
        return f"[{label}] {condition.rule.value}: {condition.subject}"

    @property
    def body(self) -> str:
        """The summary, the facts one per line, and the link."""
        condition = self.alert.condition
        lines = [condition.summary if self.kind is NoticeKind.FIRING else
                 f"resolved: {condition.summary}"]  # fmt: skip
        lines += [f"{name}: {value}" for name, value in condition.details.items()]
        if condition.link:
            lines.append(condition.link)
        return "\n".join(lines)


@attrs.frozen
class AlertBook:
    """Every alert of one hub, shared by its processes (stored as one JSON document).

    Attributes:
        active: pending and firing alerts by key.
        recent: resolved alerts and events, newest first (at most `RECENT_KEPT`).
        mutes: alert keys or rule names muted, with the instant the mute ends.
        seen_dead: ids of dead runs already alerted, newest last (at most `SEEN_DEAD_KEPT`).
        dead_sent: per job, the instants of dead-run notices sent in the last hour.
        dead_held: per job, dead-run notices held back since the last one sent.
        started: when the book was created; older dead letters are not alerted.
    """

    started: datetime
    active: Mapping[str, Alert] = attrs.field(factory=dict)
    recent: tuple[Alert, ...] = ()
    mutes: Mapping[str, datetime] = attrs.field(factory=dict)
    seen_dead: tuple[str, ...] = ()
    dead_sent: Mapping[str, tuple[datetime, ...]] = attrs.field(factory=dict)
    dead_held: Mapping[str, int] = attrs.field(factory=dict)

    def muted_until(self, key: str, now: datetime) -> datetime | None:
        """When the mute covering alert `key` (by its key or its rule) ends; None: not muted."""
        ends = [
            until for name, until in self.mutes.items()
            if until > now and (name == key or key.startswith(f"{name}:"))
        ]  # fmt: skip
        return max(ends, default=None)

    def muted(self, target: str, until: datetime, now: datetime) -> AlertBook:
        """The book with `target` (an alert key or a rule name) muted until `until` (a past
        instant unmutes it); expired mutes are dropped."""
        mutes = {k: v for k, v in self.mutes.items() if v > now and k != target}
        if until > now:
            mutes[target] = until
        return attrs.evolve(self, mutes=mutes)


def mute_target(target: str) -> str:
    """`target` checked as something to mute: a rule name or ``rule:subject``. Raises
    `ValidationError`."""
    rule, _, subject = target.partition(":")
    if rule not in {r.value for r in Rule} or (_ and not subject):
        known = ", ".join(r.value for r in Rule)
        raise ValidationError(f"cannot mute {target!r}: name a rule ({known}) or rule:subject")
    return target


def advance(
    book: AlertBook,
    conditions: Iterable[Condition],
    evaluated: frozenset[Rule],
    now: datetime,
    policy: AlertPolicy,
) -> tuple[AlertBook, list[Notice]]:
    """Fold one evaluation into `book`; returns the new book and the notices to send.

    `conditions` are what holds now (and the events that happened) for the rules in
    `evaluated`; an active alert of an evaluated rule whose condition is absent resolves (a
    pending one is dropped silently). Alerts of rules not evaluated (their facts could not
    be read) are left as they are.
    """
    step = _Step(book, now, policy)
    holding: set[str] = set()
    for condition in conditions:
        if condition.event:
            step.event(condition)
        else:
            holding.add(condition.key)
            step.holds(condition)
    for key, alert in list(step.active.items()):
        if key not in holding and alert.condition.rule in evaluated:
            step.clears(alert)
    return step.book(), step.notices


@attrs.define
class _Step:
    """One `advance`: the book's parts being changed, and the notices found."""

    before: AlertBook
    now: datetime
    policy: AlertPolicy
    notices: list[Notice] = attrs.field(factory=list)
    active: dict[str, Alert] = attrs.field(init=False)
    recent: list[Alert] = attrs.field(init=False)
    seen_dead: list[str] = attrs.field(init=False)
    dead_sent: dict[str, tuple[datetime, ...]] = attrs.field(init=False)
    dead_held: dict[str, int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        hour_ago = self.now - timedelta(hours=1)
        self.active = dict(self.before.active)
        self.recent = list(self.before.recent)
        self.seen_dead = list(self.before.seen_dead)
        self.dead_sent = {
            job: tuple(t for t in sent if t > hour_ago)
            for job, sent in self.before.dead_sent.items()
        }
        self.dead_held = dict(self.before.dead_held)

    def event(self, condition: Condition) -> None:
        """A one-shot occurrence: sent once (unless muted or over the job's hourly limit)."""
        if condition.event_id in self.seen_dead:
            return
        self.seen_dead.append(str(condition.event_id))
        job = condition.job or ""
        sent = self.dead_sent.get(job, ())
        reason = self._muted(condition.key)
        if reason is None and len(sent) >= self.policy.dead_per_job_per_hour:
            reason = "rate limited"
            self.dead_held[job] = self.dead_held.get(job, 0) + 1
        if reason is None and self.dead_held.get(job):
            details = {**condition.details, "held_back_since_last_notice": self.dead_held.pop(job)}
            condition = attrs.evolve(condition, details=details)
        alert = Alert(
            condition, AlertStatus.EVENT, self.now, fired_at=self.now,
            notified_at=None if reason else self.now, suppressed=reason,
        )  # fmt: skip
        if reason is None:
            self.dead_sent[job] = (*sent, self.now)
            self.notices.append(Notice(alert, NoticeKind.FIRING))
        self.recent.insert(0, alert)

    def holds(self, condition: Condition) -> None:
        """A condition holds: pending, then firing once it held for its rule's duration."""
        current = self.active.get(condition.key)
        if current is None:
            current = Alert(condition, AlertStatus.PENDING, self.now)
        else:
            current = attrs.evolve(current, condition=condition)
        held = self.now - current.since >= self.policy.hold_for(condition.rule)
        if current.status is AlertStatus.PENDING and held:
            reason = self._muted(condition.key) or self._flapping(condition.key)
            current = attrs.evolve(
                current, status=AlertStatus.FIRING, fired_at=self.now, suppressed=reason,
                notified_at=current.notified_at if reason else self.now,
            )  # fmt: skip
            if reason is None:
                self.notices.append(Notice(current, NoticeKind.FIRING))
        self.active[condition.key] = current

    def clears(self, alert: Alert) -> None:
        """An active alert's condition no longer holds: a firing one resolves."""
        del self.active[alert.key]
        if alert.status is not AlertStatus.FIRING:
            return
        # A resolution is sent when the firing was; a muted or held-back firing resolves
        # quietly, so no one gets a "resolved" for an alert they never saw.
        sent = alert.suppressed is None and self._muted(alert.key) is None
        resolved = attrs.evolve(
            alert, status=AlertStatus.RESOLVED, resolved_at=self.now,
            notified_at=self.now if sent else alert.notified_at,
            suppressed=None if sent else (alert.suppressed or "muted"),
        )  # fmt: skip
        if sent:
            self.notices.append(Notice(resolved, NoticeKind.RESOLVED))
        self.recent.insert(0, resolved)

    def book(self) -> AlertBook:
        """The book after this step."""
        return attrs.evolve(
            self.before,
            active=self.active,
            recent=tuple(self.recent[:RECENT_KEPT]),
            seen_dead=tuple(self.seen_dead[-SEEN_DEAD_KEPT:]),
            dead_sent={job: sent for job, sent in self.dead_sent.items() if sent},
            dead_held=self.dead_held,
            mutes={k: v for k, v in self.before.mutes.items() if v > self.now},
        )

    def _muted(self, key: str) -> str | None:
        return "muted" if self.before.muted_until(key, self.now) is not None else None

    def _flapping(self, key: str) -> str | None:
        for alert in self.before.recent:
            if alert.key == key and alert.notified_at is not None:
                return (
                    "flapping" if self.now - alert.notified_at < self.policy.refire_after else None
                )
        return None


# --- routing ------------------------------------------------------------------------------

#: The tag that limits a channel to alerts about High and Critical jobs (the seed's SMS).
HIGH_PRIORITY_TAG = "high-priority"


@attrs.frozen
class Route:
    """One channel URL and which notices it takes.

    Written ``[TAGS=]URL`` in settings, TAGS comma-separated: a severity (``info``,
    ``warning``, ``critical``: that one and worse) and/or ``high-priority`` (only alerts
    about a job of High or Critical priority, and alerts about no job at all: the backend,
    the queue). ``critical,high-priority=twilio://...`` texts only for what is both.

    Attributes:
        url: the apprise URL (it holds secrets: show it with `shown`).
        min_severity: the least severe notice it takes.
        high_priority: only notices about High or Critical jobs (or about no job).
    """

    url: str
    min_severity: Severity = Severity.INFO
    high_priority: bool = False

    @classmethod
    def parse(cls, entry: str) -> Route:
        """A route from ``[TAGS=]URL``. Raises `ValidationError` (never quoting the URL)."""
        tags, sep, url = entry.strip().partition("=")
        if not sep or "://" in tags:
            tags, url = "", entry.strip()
        if "://" not in url:
            raise ValidationError("an alert URL must look like scheme://..., e.g. mailto://")
        min_severity, high = Severity.INFO, False
        for tag in filter(None, (t.strip().lower() for t in tags.split(","))):
            if tag == HIGH_PRIORITY_TAG:
                high = True
            elif tag in {s.value for s in Severity}:
                min_severity = Severity(tag)
            else:
                raise ValidationError(
                    f"unknown alert tag {tag!r}: use info, warning, critical or {HIGH_PRIORITY_TAG}"
                )
        return cls(url, min_severity, high)

    def takes(self, notice: Notice) -> bool:
        """Whether this channel gets `notice`."""
        condition = notice.alert.condition
        if notice.alert.severity.rank < self.min_severity.rank:
            return False
        if self.high_priority and condition.job is not None:
            return condition.priority is not None and condition.priority <= Priority.HIGH
        return True

    @property
    def shown(self) -> str:
        """The route with its URL's secrets hidden (`redacted_channel`)."""
        tags = [] if self.min_severity is Severity.INFO else [self.min_severity.value]
        tags += [HIGH_PRIORITY_TAG] if self.high_priority else []
        return (",".join(tags) + "=" if tags else "") + redacted_channel(self.url)


def parse_routes(text: str | Sequence[str]) -> list[Route]:
    """Routes from a whitespace-separated string (or a list) of ``[TAGS=]URL`` entries."""
    entries = text.split() if isinstance(text, str) else list(text)
    return [Route.parse(entry) for entry in entries if entry.strip()]


def redacted_channel(url: str) -> str:
    """A notification URL as it may be shown: its scheme only (``slack://***``).

    Unlike a backend URL, a notification URL keeps its secrets anywhere — Slack and Teams
    tokens and Telegram bot tokens in the path, Twilio's auth token as the password, API
    keys in the query — so nothing after the scheme is shown.
    """
    scheme, sep, _ = url.strip().partition("://")
    if not sep or not scheme.replace("+", "").replace("-", "").isalnum():
        return MASK
    return f"{scheme.lower()}://{MASK}"


# --- storing ------------------------------------------------------------------------------


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _alert_json(alert: Alert) -> dict[str, Any]:
    c = alert.condition
    return {
        "rule": c.rule.value, "subject": c.subject, "summary": c.summary,
        "details": dict(c.details), "job": c.job,
        "priority": None if c.priority is None else int(c.priority), "link": c.link,
        "event_id": c.event_id, "status": alert.status.value, "since": _iso(alert.since),
        "fired_at": _iso(alert.fired_at), "resolved_at": _iso(alert.resolved_at),
        "notified_at": _iso(alert.notified_at), "suppressed": alert.suppressed,
    }  # fmt: skip


def _alert_of(data: Mapping[str, Any]) -> Alert:
    condition = Condition(
        Rule(data["rule"]), data["subject"], data["summary"], data.get("details") or {},
        data.get("job"), None if data.get("priority") is None else Priority(data["priority"]),
        data.get("link"), data.get("event_id"),
    )  # fmt: skip
    since = _instant(data["since"])
    assert since is not None  # written by encode_book
    return Alert(
        condition, AlertStatus(data["status"]), since, _instant(data.get("fired_at")),
        _instant(data.get("resolved_at")), _instant(data.get("notified_at")),
        data.get("suppressed"),
    )  # fmt: skip


def encode_book(book: AlertBook) -> bytes:
    """The book as stored (JSON)."""
    return json.dumps(
        {
            "version": 1,
            "started": _iso(book.started),
            "active": [_alert_json(a) for a in book.active.values()],
            "recent": [_alert_json(a) for a in book.recent],
            "mutes": {k: _iso(v) for k, v in book.mutes.items()},
            "seen_dead": list(book.seen_dead),
            "dead_sent": {job: [_iso(t) for t in sent] for job, sent in book.dead_sent.items()},
            "dead_held": dict(book.dead_held),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def decode_book(raw: bytes) -> AlertBook:
    """A stored book (as `encode_book` wrote it)."""
    data = json.loads(raw)
    active = [_alert_of(a) for a in data.get("active", ())]
    started = _instant(data["started"])
    assert started is not None  # written by encode_book
    return AlertBook(
        started=started,
        active={a.key: a for a in active},
        recent=tuple(_alert_of(a) for a in data.get("recent", ())),
        mutes={k: datetime.fromisoformat(v) for k, v in data.get("mutes", {}).items()},
        seen_dead=tuple(data.get("seen_dead", ())),
        dead_sent={
            job: tuple(datetime.fromisoformat(t) for t in sent)
            for job, sent in data.get("dead_sent", {}).items()
        },
        dead_held={job: int(n) for job, n in data.get("dead_held", {}).items()},
    )


#: The shared-store key of the alert book.
BOOK_KEY = "alerts:book"
#: How often a racing write is retried before the change is given up.
SWAP_TRIES = 8


async def read_book(shared: SharedStore | None, now: datetime) -> tuple[bytes | None, AlertBook]:
    """The stored alert book and its raw bytes (a fresh book starting `now` when none is
    stored, or there is no shared store). Raises `BackendUnavailableError`."""
    raw = None if shared is None else await shared.get(BOOK_KEY)
    return raw, (AlertBook(started=now) if raw is None else decode_book(raw))


async def change_book(
    shared: SharedStore | None, now: datetime, change: Callable[[AlertBook], tuple[AlertBook, T]]
) -> T | None:
    """Apply `change` to the stored book with a compare-and-set, re-reading and re-applying
    it when another process wrote first; returns what the applied `change` returned, or None
    when every try lost a race (or there is no shared store to keep a book in). Raises
    `BackendUnavailableError`."""
    if shared is None:
        return None
    for _ in range(SWAP_TRIES):
        raw, book = await read_book(shared, now)
        new, result = change(book)
        encoded = encode_book(new)
        if encoded == raw or await shared.swap(BOOK_KEY, raw, encoded):
            return result
    return None
