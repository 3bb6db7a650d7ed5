"""Retry policy: how long to wait before the next attempt, and when to give up.

The policy is pure arithmetic. Randomness (jitter) is drawn by the caller and passed in, so
the same inputs always give the same decision and tests never depend on luck.
"""

from __future__ import annotations

import math
from datetime import timedelta

import attrs

from hub_scheduler.domain.errors import InvalidRetryPolicyError

#: The longest delay a policy may ask for; keeps every delay a valid `timedelta`.
MAX_DELAY_CAP = timedelta(days=365)


@attrs.frozen
class RetryAfter:
    """Try again: attempt number `attempt` runs once `delay` has passed."""

    delay: timedelta
    attempt: int


@attrs.frozen
class GiveUp:
    """No attempts are left: the run goes to the dead-letter queue."""

    attempts: int


RetryDecision = RetryAfter | GiveUp


def _check_delay(name: str, value: timedelta) -> None:
    if value < timedelta(0):
        raise InvalidRetryPolicyError(name, f"must not be negative, got {value}")
    if value > MAX_DELAY_CAP:
        raise InvalidRetryPolicyError(name, f"must be at most {MAX_DELAY_CAP.days} days")


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with an optional downward jitter and a cap.

    Attempt 1 is the first run. After failed attempt ``n`` (``n <= max_retries``) the next
    attempt waits ``min(max_delay, base_delay * factor ** (n - 1))``, shortened by up to
    ``jitter`` of itself: with the defaults that is 2 s, 4 s, 8 s, then give up.

    Attributes:
        max_retries: attempts after the first one (0 disables retries).
        base_delay: wait before the first retry.
        factor: growth per retry (1.0 for a constant delay).
        max_delay: the cap on any single wait.
        jitter: the largest fraction (0.0-1.0) a wait may be shortened by, so retries of
            many jobs that failed together spread out instead of arriving together.
    """

    max_retries: int = 3
    base_delay: timedelta = timedelta(seconds=2)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.max_retries <= 1000:
            raise InvalidRetryPolicyError(
                "max_retries", f"must be between 0 and 1000, got {self.max_retries}"
            )
        _check_delay("base_delay", self.base_delay)
        _check_delay("max_delay", self.max_delay)
        if not (math.isfinite(self.factor) and 1.0 <= self.factor <= 100.0):
            raise InvalidRetryPolicyError("factor", f"must be between 1 and 100, got {self.factor}")
        if not 0.0 <= self.jitter <= 1.0:
            raise InvalidRetryPolicyError("jitter", f"must be between 0 and 1, got {self.jitter}")
        if self.max_delay < self.base_delay:
            raise InvalidRetryPolicyError(
                "max_delay", f"{self.max_delay} is shorter than base_delay {self.base_delay}"
            )

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries: the first failure is final."""
        return cls(max_retries=0)

    @property
    def max_attempts(self) -> int:
        """The first attempt plus every retry."""
        return self.max_retries + 1

    def delay_before(self, attempt: int, jitter_sample: float = 0.0) -> timedelta:
        """The wait before attempt number `attempt` (2 or more), before any cap on attempts.

        Args:
            attempt: the attempt about to be scheduled (2 is the first retry).
            jitter_sample: a number in [0, 1) the caller drew; 0 gives the nominal delay.
        """
        if attempt < 2:
            raise InvalidRetryPolicyError("attempt", f"retries start at attempt 2, got {attempt}")
        if not 0.0 <= jitter_sample < 1.0:
            raise InvalidRetryPolicyError(
                "jitter_sample", f"must be in [0, 1), got {jitter_sample}"
            )
        base = self.base_delay.total_seconds()
        cap = self.max_delay.total_seconds()
        exponent = attempt - 2
        # factor ** exponent overflows a float long before `attempt` gets large; once the
        # exponent alone exceeds the cap the result is the cap, so never compute past it.
        if base == 0 or cap == 0:
            nominal = 0.0
        elif self.factor == 1.0 or exponent <= math.log(cap / base, self.factor):
            nominal = min(cap, base * self.factor**exponent)
        else:
            nominal = cap
        return timedelta(seconds=nominal * (1.0 - self.jitter * jitter_sample))

    def decide(self, attempt: int, jitter_sample: float = 0.0) -> RetryDecision:
        """What to do after attempt number `attempt` (1-based) failed.

        Args:
            attempt: the attempt that just failed; 1 is the first run.
            jitter_sample: a number in [0, 1) the caller drew (for example
                ``random.random()``); 0 gives the nominal delay.

        Returns:
            `RetryAfter` with the wait and the next attempt's number, or `GiveUp` once
            ``max_retries`` retries have been spent.
        """
        if attempt < 1:
            raise InvalidRetryPolicyError("attempt", f"attempts start at 1, got {attempt}")
        if attempt > self.max_retries:
            return GiveUp(attempts=attempt)
        return RetryAfter(delay=self.delay_before(attempt + 1, jitter_sample), attempt=attempt + 1)
