"""Jobs, priorities, runs and their errors (the lifecycle itself is the backends' contract:
tests/contract)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from hub_scheduler import (
    Cron,
    InvalidJobNameError,
    JobDefinition,
    Priority,
    Run,
    RunState,
    Schedule,
)
from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.model import RESERVED_JOB_NAMES, ErrorInfo, validate_job_name
from hub_scheduler.domain.ports import EnqueueRequest

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


def test_duration_is_known_once_the_attempt_finished() -> None:
    """A run's duration is finish minus start of its last attempt, None until it finished."""
    started = Run(id="r1", job="a", state=RunState.ACTIVE, enqueued_at=T0, started_at=T0)
    finished = attrs.evolve(
        started, state=RunState.SUCCEEDED, finished_at=T0 + timedelta(seconds=2)
    )
    assert (started.duration, finished.duration) == (None, timedelta(seconds=2))


def test_error_info_keeps_type_message_and_last_frames() -> None:
    """An exception is summarised as its qualified type, message and innermost frames,
    ending with the exception line as Python prints it."""

    def fail() -> None:
        raise KeyError("missing-invoice")

    try:
        fail()
    except KeyError as exc:
        info = ErrorInfo.from_exception(exc)
    assert (info.type, info.message) == ("KeyError", "'missing-invoice'")
    assert "in fail" in info.traceback
    assert info.traceback.splitlines()[-1] == "KeyError: 'missing-invoice'"


def test_error_info_traceback_ends_with_the_exception_and_is_cut_to_a_few_kb() -> None:
    """A long traceback keeps its last `TRACEBACK_LIMIT` characters (where the exception
    is) and says how much was cut."""

    def fail(depth: int) -> None:
        if depth:
            fail(depth - 1)
        raise ValueError("x" * 5000)

    try:
        fail(3)
    except ValueError as exc:
        info = ErrorInfo.from_exception(exc)
    head, _, kept = info.traceback.partition("\n")
    assert (re.fullmatch(r"\[\d+ earlier characters cut\]", head) is not None, len(kept)) == (
        True,
        ErrorInfo.TRACEBACK_LIMIT,
    )
    assert kept.endswith("x" * 4000 + "\n")


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_idempotency_key_length_is_checked_at_the_request(key: str) -> None:
    """An empty or over-long idempotency key is refused before any store sees it."""
    with pytest.raises(InvalidJobError, match="idempotency_key"):
        EnqueueRequest("job", idempotency_key=key)


@pytest.mark.parametrize("name", sorted(RESERVED_JOB_NAMES))
def test_the_words_the_api_serves_under_jobs_are_not_job_names(name: str) -> None:
    """``GET /jobs/dlq`` is the dead-letter queue: a job called "dlq" could never be read."""
    with pytest.raises(InvalidJobNameError, match="reserved"):
        validate_job_name(name)
