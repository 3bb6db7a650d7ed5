"""Jobs, priorities and the run lifecycle state machine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import (
    Cron,
    GiveUp,
    IllegalTransitionError,
    InvalidJobNameError,
    JobDefinition,
    Priority,
    RetryAfter,
    Run,
    RunState,
    Schedule,
)
from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.model import TRANSITIONS, ErrorInfo

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_priorities_order_lower_number_first() -> None:
    """Critical 1 < High 5 < Normal 10 < Low 15; sorting puts the most urgent first."""
    assert [int(p) for p in Priority] == [1, 5, 10, 15]
    assert sorted([Priority.LOW, Priority.CRITICAL, Priority.NORMAL, Priority.HIGH]) == [
        Priority.CRITICAL,
        Priority.HIGH,
        Priority.NORMAL,
        Priority.LOW,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("high", Priority.HIGH),
        ("CRITICAL", Priority.CRITICAL),
        (15, Priority.LOW),
        ("10", Priority.NORMAL),
    ],
)
def test_priority_parses_names_and_numbers(value: int | str, expected: Priority) -> None:
    """Priorities are accepted by name (any case) or number."""
    assert Priority.parse(value) == expected


@pytest.mark.parametrize("value", ["urgent", 3, "0", ""])
def test_unknown_priority_lists_the_allowed_ones(value: int | str) -> None:
    """An unknown priority is refused with the allowed names and numbers."""
    with pytest.raises(
        InvalidJobError, match=r"critical \(1\), high \(5\), normal \(10\), low \(15\)"
    ):
        Priority.parse(value)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "it must not be empty"),
        ("9lives", "it must start with a letter, not '9'"),
        ("send mail", "' ' is not allowed"),
        ("a/b", "'/' is not allowed"),
        ("é", "it must start with a letter"),
        ("x" * 101, "it is 101 characters; the limit is 100"),
    ],
)
def test_invalid_job_names_name_the_rule(name: str, rule: str) -> None:
    """Each bad job name is refused with the rule it breaks."""
    with pytest.raises(InvalidJobNameError) as caught:
        JobDefinition(name)
    assert rule in caught.value.rule


def test_job_defaults() -> None:
    """A bare job: normal priority, 3 retries from 2 s, 30 s timeout, no schedules."""
    job = JobDefinition("syncXero")
    assert (job.priority, job.retry.max_retries, job.timeout, job.schedules) == (
        Priority.NORMAL,
        3,
        timedelta(seconds=30),
        (),
    )


def test_job_binds_its_schedules_with_stable_ids() -> None:
    """Schedules declared on a job get its name and ids '<job>:<n>' unless given one."""
    job = JobDefinition(
        "digest",
        schedules=[Cron("0 8 * * 1"), Schedule(Cron("@daily"), id="nightly")],
    )
    assert [(s.job, s.id) for s in job.schedules] == [("digest", "digest:0"), ("digest", "nightly")]


@pytest.mark.parametrize("timeout", [timedelta(0), timedelta(days=2)])
def test_job_timeout_must_be_sensible(timeout: timedelta) -> None:
    """A zero or multi-day timeout is refused."""
    with pytest.raises(InvalidJobError, match="timeout"):
        JobDefinition("a", timeout=timeout)


def _run(state: RunState) -> Run:
    return Run(id="r1", job="a", state=state, enqueued_at=T0)


ERROR = ErrorInfo("ValueError", "boom")
MOVES: dict[RunState, Callable[[Run], Run]] = {
    RunState.QUEUED: lambda r: r.due() if r.state is not RunState.ACTIVE else r.stalled(),
    RunState.ACTIVE: lambda r: r.started(T0, "w1"),
    RunState.SUCCEEDED: lambda r: r.succeeded(T0),
    RunState.RETRY_SCHEDULED: lambda r: r.failed(T0, ERROR, RetryAfter(timedelta(seconds=2), 2)),
    RunState.DEAD: lambda r: r.failed(T0, ERROR, GiveUp(1)),
    RunState.CANCELLED: lambda r: r.cancelled(T0),
}


@pytest.mark.parametrize("source", list(RunState))
@pytest.mark.parametrize("target", [s for s in RunState if s is not RunState.DELAYED])
def test_lifecycle_allows_exactly_the_table(source: RunState, target: RunState) -> None:
    """Every (state, target) pair either moves as the table says or raises."""
    run = _run(source)
    if target in TRANSITIONS[source]:
        assert MOVES[target](run).state is target
    else:
        with pytest.raises(IllegalTransitionError) as caught:
            MOVES[target](run)
        assert (caught.value.current, caught.value.target) == (source.value, target.value)


def test_nothing_moves_into_delayed_after_enqueue() -> None:
    """DELAYED is only an entry state: no transition leads back to it."""
    assert all(RunState.DELAYED not in targets for targets in TRANSITIONS.values())
    assert {s for s in RunState if not TRANSITIONS[s]} == {
        RunState.SUCCEEDED,
        RunState.DEAD,
        RunState.CANCELLED,
    }


def test_a_run_through_retry_to_success() -> None:
    """queued -> active -> retry (attempt 2 after 2 s) -> queued -> active -> succeeded."""
    run = Run.new(id="r1", job="a", now=T0)
    run = run.started(T0, "w1").failed(
        T0 + timedelta(seconds=1), ERROR, RetryAfter(timedelta(seconds=2), 2)
    )
    assert (run.state, run.attempt, run.run_at) == (
        RunState.RETRY_SCHEDULED,
        2,
        T0 + timedelta(seconds=3),
    )
    run = run.due().started(T0 + timedelta(seconds=3), "w2").succeeded(T0 + timedelta(seconds=5))
    assert (run.state, run.error, run.duration) == (RunState.SUCCEEDED, None, timedelta(seconds=2))


def test_stall_returns_run_to_queue_and_counts() -> None:
    """A run whose worker died is queued again with one more stall."""
    run = Run.new(id="r1", job="a", now=T0).started(T0, "w1").stalled()
    assert (run.state, run.stalls, run.worker) == (RunState.QUEUED, 1, None)


def test_new_run_with_future_start_is_delayed() -> None:
    """Enqueued with a start in the future, a run waits as delayed."""
    assert (
        Run.new(id="r", job="a", now=T0, run_at=T0 + timedelta(seconds=5)).state is RunState.DELAYED
    )
    assert Run.new(id="r", job="a", now=T0, run_at=T0).state is RunState.QUEUED


def test_error_info_keeps_type_message_and_last_frames() -> None:
    """An exception is summarised as its qualified type, message and innermost frames."""

    def fail() -> None:
        raise KeyError("missing-invoice")

    try:
        fail()
    except KeyError as exc:
        info = ErrorInfo.from_exception(exc)
    assert (info.type, info.message) == ("KeyError", "'missing-invoice'")
    assert "in fail" in info.traceback


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_idempotency_key_length_is_checked_at_the_request(key: str) -> None:
    """An empty or over-long idempotency key is refused before any store sees it."""
    from hub_scheduler.domain.ports import EnqueueRequest  # noqa: PLC0415

    with pytest.raises(InvalidJobError, match="idempotency_key"):
        EnqueueRequest("job", idempotency_key=key)
