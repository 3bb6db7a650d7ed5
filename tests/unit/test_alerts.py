"""The alert book's pure rules: routing by severity and priority, flapping, the stored form,
and how notification URLs are shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler.domain.alerts import (
    AlertBook,
    AlertPolicy,
    Condition,
    NoticeKind,
    Route,
    Rule,
    Severity,
    advance,
    decode_book,
    encode_book,
    mute_target,
    parse_routes,
    redacted_channel,
)
from hub_scheduler.domain.errors import ValidationError
from hub_scheduler.domain.model import Priority

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ALL = frozenset(Rule)
POLICY = AlertPolicy()


def _dead(job: str, run_id: str, priority: Priority) -> Condition:
    return Condition(Rule.RUN_DEAD, job, "dead", job=job, priority=priority, event_id=run_id)


@pytest.mark.parametrize(
    ("entry", "severity", "high"),
    [
        ("mailto://a:b@x.org", Severity.INFO, False),
        ("critical=slack://T/B/C", Severity.CRITICAL, False),
        ("warning,high-priority=twilio://a:b@1/2", Severity.WARNING, True),
    ],
)
def test_routes_parse_their_tags(entry: str, severity: Severity, high: bool) -> None:
    """A route's tags set its least severity and its high-priority filter."""
    [route] = parse_routes(entry)
    assert (route.min_severity, route.high_priority) == (severity, high)


def test_routing_by_severity_and_job_priority() -> None:
    """An SMS route tagged critical,high-priority takes a dead run of a High job, not one of
    a Normal job, nor a warning; an untagged route takes all."""
    sms = Route.parse("critical,high-priority=twilio://a:b@1/2")
    mail = Route.parse("mailto://a:b@x.org")
    _, notices = advance(
        AlertBook(NOW),
        [
            _dead("pay", "r1", Priority.HIGH),
            _dead("report", "r2", Priority.NORMAL),
            Condition(Rule.FAILURE_RATE, "pay", "x", job="pay", priority=Priority.HIGH),
        ],
        ALL, NOW, POLICY,
    )  # fmt: skip
    assert [n.alert.key for n in notices if sms.takes(n)] == ["run_dead:pay"]
    assert len([n for n in notices if mail.takes(n)]) == 3


@pytest.mark.parametrize(
    "url",
    ["tgram://123:AAHsecret/987", "slack://T1/B2/secretC/#c", "mailto://u:pw@x.org?pass=p"],
)
def test_a_notification_url_shows_its_scheme_only(url: str) -> None:
    """Nothing after the scheme of a notification URL is shown, wherever its secret is."""
    assert redacted_channel(url) == url.split("://", maxsplit=1)[0] + "://***"
    assert "secret" not in Route.parse(f"critical={url}").shown


def test_a_bad_tag_or_url_is_refused_without_quoting_it() -> None:
    """An unknown tag or a text that is no URL is a `ValidationError` that quotes no URL."""
    with pytest.raises(ValidationError, match="unknown alert tag 'urgent'"):
        Route.parse("urgent=slack://secret")
    with pytest.raises(ValidationError) as raised:
        Route.parse("hunter2")
    assert "hunter2" not in str(raised.value)


def test_a_condition_firing_again_soon_is_held_back_as_flapping() -> None:
    """An alert that resolved and fires again within `refire_after` of its last notice is
    recorded without a notice, and resolves quietly."""
    cond = Condition(Rule.FAILURE_RATE, "pay", "x", job="pay")
    book, first = advance(AlertBook(NOW), [cond], ALL, NOW, POLICY)
    book, resolved = advance(book, [], ALL, NOW + timedelta(minutes=1), POLICY)
    book, again = advance(book, [cond], ALL, NOW + timedelta(minutes=2), POLICY)
    book, quiet = advance(book, [], ALL, NOW + timedelta(minutes=3), POLICY)
    kinds = [[n.kind for n in step] for step in (first, resolved, again, quiet)]
    assert kinds == [[NoticeKind.FIRING], [NoticeKind.RESOLVED], [], []]
    assert book.recent[0].suppressed == "flapping"


def test_rules_not_evaluated_keep_their_alerts() -> None:
    """An alert of a rule whose facts could not be read this time stays active."""
    cond = Condition(Rule.BACKEND_MEMORY, "backend", "x")
    book, _ = advance(AlertBook(NOW), [cond], ALL, NOW, POLICY)
    book, notices = advance(book, [], ALL - {Rule.BACKEND_MEMORY}, NOW, POLICY)
    assert (list(book.active), notices) == (["backend_memory:backend"], [])


def test_the_book_survives_its_stored_form() -> None:
    """encode_book and decode_book round-trip every field."""
    book, _ = advance(
        AlertBook(NOW).muted("no_worker", NOW + timedelta(hours=1), NOW),
        [_dead("pay", "r1", Priority.HIGH),
         Condition(Rule.QUEUE_PAUSED, "queue", "paused", details={"waiting": 3})],
        ALL, NOW, POLICY,
    )  # fmt: skip
    assert decode_book(encode_book(book)) == book


def test_mute_targets_name_a_rule() -> None:
    """A mute names a rule or rule:subject; anything else is refused."""
    assert mute_target("run_dead:pay") == "run_dead:pay"
    with pytest.raises(ValidationError):
        mute_target("nonsense")
