"""Pure parts of the PostgreSQL adapter: the wake-up debouncer, URL masking, cursors and the
duration buckets' Python twin."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import attrs
import pytest

from hub_scheduler.adapters.postgres.backend import check_url
from hub_scheduler.adapters.postgres.codec import has_nul, make_cursor, parse_cursor
from hub_scheduler.adapters.postgres.store import Debouncer, channel_name
from hub_scheduler.domain.errors import InvalidBackendUrlError, InvalidCursorError
from hub_scheduler.domain.urls import redacted


@attrs.define
class Recorder:
    """Counts the wake-ups a debouncer sends."""

    sent: int = 0
    event: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def send(self) -> None:
        self.sent += 1
        self.event.set()


async def test_debouncer_sends_the_first_at_once_and_folds_the_rest() -> None:
    """First wake-up inline; those within the window make one trailing send; later, inline again."""
    now = [100.0]
    recorder = Recorder()
    debouncer = Debouncer(recorder.send, window=1.0, clock=lambda: now[0])
    assert debouncer.inline() is True
    now[0] = 100.999
    assert debouncer.inline() is False
    debouncer.later()
    debouncer.later()
    await asyncio.wait_for(recorder.event.wait(), 5)
    assert recorder.sent == 1
    now[0] = 101.5  # within the window of the trailing send
    assert debouncer.inline() is False
    now[0] = 102.0
    assert debouncer.inline() is True
    await debouncer.aclose()


async def test_debouncer_wakes_at_once_for_each_of_a_steady_stream() -> None:
    """Enqueues 20 ms apart (50/s) each notify inline with the default window; a burst 1 ms
    apart folds all but its first into one trailing send."""
    now = [100.0]
    recorder = Recorder()
    debouncer = Debouncer(recorder.send, clock=lambda: now[0])
    stream = []
    for _ in range(10):
        stream.append(debouncer.inline())
        now[0] += 0.02
    assert stream == [True] * 10
    burst = []
    for _ in range(10):
        burst.append(debouncer.inline())
        if not burst[-1]:
            debouncer.later()
        now[0] += 0.001
    assert burst == [True] + [False] * 9
    await asyncio.wait_for(recorder.event.wait(), 5)
    assert recorder.sent == 1
    await debouncer.aclose()


async def test_debouncer_sends_again_for_runs_ready_while_it_was_sending() -> None:
    """An operation that committed while the trailing NOTIFY was on its way gets one more
    (that one may have been seen before its runs were)."""
    started, gate, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    sent = []

    async def send() -> None:
        started.set()
        await gate.wait()
        sent.append(True)
        if len(sent) == 2:
            done.set()

    debouncer = Debouncer(send, window=0.01)
    assert debouncer.inline() is True
    debouncer.later()
    await asyncio.wait_for(started.wait(), 5)
    debouncer.later()  # committed during the send
    gate.set()
    await asyncio.wait_for(done.wait(), 5)
    assert sent == [True, True]
    await debouncer.aclose()


async def test_debouncer_drops_a_pending_wakeup_on_close() -> None:
    """Closing cancels a trailing wake-up that has not gone out yet."""
    recorder = Recorder()
    debouncer = Debouncer(recorder.send, window=60.0)
    assert debouncer.inline() is True
    debouncer.later()
    await debouncer.aclose()
    assert recorder.sent == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/jobs", "postgresql://app:***@db:5432/jobs"),
        ("postgres://db/jobs?password=s3cret&sslmode=require",
         "postgres://db/jobs?password=***&sslmode=require"),
        ("postgresql://app@db/jobs", "postgresql://app@db/jobs"),
    ],
)  # fmt: skip
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    """A password in the user part or in the query is masked; other URLs stay as they are."""
    assert redacted(url) == shown


def test_channel_names_fit_postgresql_identifiers() -> None:
    """Channel names are readable for short prefixes and hashed to fit 63 bytes for long ones."""
    assert channel_name("hub", "wake") == "hub_scheduler:hub:wake"
    long = channel_name("p" * 63, "schedules")
    assert (len(long.encode()) <= 63, long.endswith(":schedules")) == (True, True)


def test_cursors_round_trip_and_forgeries_are_refused() -> None:
    """A cursor is <µs since the epoch>:<sequence>; anything else is InvalidCursorError."""
    instant = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_cursor(make_cursor(instant, 42)) == (instant, 42)
    assert parse_cursor("-5:0") == (datetime(1969, 12, 31, 23, 59, 59, 999995, tzinfo=UTC), 0)
    for forged in ("e:0", "12:x", "1:2:3", "99999999999999999999999:1", ""):
        with pytest.raises(InvalidCursorError):
            parse_cursor(forged)


@pytest.mark.parametrize(
    ("text", "nul"),
    [('{"a":"\\u0000"}', True), ('{"a":"\\\\u0000"}', False), ('{"a":"\\\\\\u0000"}', True)],
)
def test_nul_escapes_are_told_from_escaped_backslashes(text: str, nul: bool) -> None:
    """Only a real \\u0000 escape counts as a NUL character (jsonb cannot store one)."""
    assert has_nul(text) is nul


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://app:s3cret@db:notaport/jobs", "the port must be a number"),
        ("postgresql://app:s3cret@db:99999/jobs", "the port must be a number"),
        ("postgresql://app:s3cret@[db/jobs", "not a PostgreSQL connection URL"),
        ("postgresql://app:s3cret@db/jobs?nonsense=1", "not a PostgreSQL connection URL"),
    ],
)
def test_a_malformed_url_is_refused_before_connecting_without_the_password(
    url: str, reason: str
) -> None:
    """What libpq would refuse is a clear error at open (the CLI's exit 2), never echoing
    the URL (libpq's own message quotes it, password included)."""
    with pytest.raises(InvalidBackendUrlError, match=reason) as caught:
        check_url(url)
    assert "s3cret" not in str(caught.value)
    check_url("postgresql://app:s3cret@db1:5432,db2:5433/jobs?sslmode=require")
