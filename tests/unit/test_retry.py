"""Retry policy: backoff delays, the cap, jitter and giving up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_scheduler import GiveUp, RetryAfter, RetryPolicy
from hub_scheduler.domain.errors import InvalidRetryPolicyError


def test_default_policy_retries_three_times_with_doubling_delays() -> None:
    """Defaults: attempts 2, 3, 4 after 2 s, 4 s, 8 s; attempt 4 failing is final."""
    policy = RetryPolicy()
    assert [policy.decide(n) for n in (1, 2, 3, 4)] == [
        RetryAfter(timedelta(seconds=2), 2),
        RetryAfter(timedelta(seconds=4), 3),
        RetryAfter(timedelta(seconds=8), 4),
        GiveUp(attempts=4),
    ]


def test_delays_stop_growing_at_the_cap() -> None:
    """Once backoff passes max_delay, every wait is max_delay."""
    policy = RetryPolicy(max_retries=20, max_delay=timedelta(seconds=30))
    delays = [policy.decide(n) for n in range(1, 8)]
    assert [d.delay.total_seconds() for d in delays if isinstance(d, RetryAfter)] == [
        2,
        4,
        8,
        16,
        30,
        30,
        30,
    ]


def test_jitter_shortens_by_at_most_its_fraction() -> None:
    """With jitter 0.5, a sample of 0.5 shortens an 8 s wait to 6 s; sample 0 keeps 8 s."""
    policy = RetryPolicy(jitter=0.5)
    assert policy.decide(3, jitter_sample=0.0) == RetryAfter(timedelta(seconds=8), 4)
    assert policy.decide(3, jitter_sample=0.5) == RetryAfter(timedelta(seconds=6), 4)


def test_no_retry_policy_gives_up_at_once() -> None:
    """RetryPolicy.none() dead-letters after the first failure."""
    assert RetryPolicy.none().decide(1) == GiveUp(attempts=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"base_delay": timedelta(seconds=-1)}, "base_delay"),
        ({"factor": 0.5}, "factor"),
        ({"factor": float("nan")}, "factor"),
        ({"jitter": 1.5}, "jitter"),
        ({"max_delay": timedelta(seconds=1)}, "max_delay"),
        ({"max_delay": timedelta(days=400)}, "max_delay"),
    ],
)
def test_out_of_range_settings_are_refused(kwargs: dict[str, object], field: str) -> None:
    """Each nonsensical setting raises an error naming the field."""
    with pytest.raises(InvalidRetryPolicyError) as caught:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_attempt_numbers_start_at_one() -> None:
    """Attempt 0 is a programming error and is refused."""
    with pytest.raises(InvalidRetryPolicyError):
        RetryPolicy().decide(0)


policies = st.builds(
    RetryPolicy,
    max_retries=st.integers(0, 1000),
    base_delay=st.timedeltas(timedelta(0), timedelta(hours=1)),
    factor=st.floats(1.0, 100.0),
    max_delay=st.timedeltas(timedelta(hours=1), timedelta(days=365)),
    jitter=st.floats(0.0, 1.0),
)


@given(policies, st.integers(1, 10**9), st.floats(0.0, 1.0, exclude_max=True))
def test_decide_never_overflows_and_respects_cap(
    policy: RetryPolicy, attempt: int, sample: float
) -> None:
    """For any policy, attempt and sample: no exception, 0 <= delay <= cap, give up on time."""
    decision = policy.decide(attempt, sample)
    if attempt > policy.max_retries:
        assert decision == GiveUp(attempts=attempt)
    else:
        assert isinstance(decision, RetryAfter)
        assert decision.attempt == attempt + 1
        assert timedelta(0) <= decision.delay <= policy.max_delay


@given(policies, st.integers(1, 999))
def test_nominal_delays_never_shrink(policy: RetryPolicy, attempt: int) -> None:
    """Without jitter, each retry waits at least as long as the one before."""
    first, second = policy.decide(attempt), policy.decide(attempt + 1)
    if isinstance(first, RetryAfter) and isinstance(second, RetryAfter):
        assert second.delay >= first.delay
