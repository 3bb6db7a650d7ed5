"""The queue depth series as pure values: bounded, one point per bucket, versioned JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub_scheduler.domain.depth import (
    RESOLUTIONS,
    DepthPoint,
    appended,
    decode_series,
    encode_series,
)

AT = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def _point(minutes: int, waiting: int = 1) -> DepthPoint:
    return DepthPoint(AT + timedelta(minutes=minutes), waiting, 0, 0, 0, 7, 1)


def test_a_series_round_trips_through_its_stored_form() -> None:
    """What is stored reads back as the same points; an unknown version reads as none
    (a newer writer's data is not misread), and so does nothing stored."""
    points = [_point(0), _point(1, 5)]
    assert decode_series(encode_series(points)) == points
    assert decode_series(b'{"v":2,"points":[[1,2,3,4,5,6,7]]}') == []
    assert decode_series(None) == []


def test_a_point_stored_before_dead_attempts_were_counted_reads_as_unknown() -> None:
    """A point of seven numbers (written before `gave_up`) reads with `gave_up` None, so no
    count of dead attempts is made up from it; a point with it keeps it."""
    old = b'{"v":1,"points":[[1780308000,2,0,0,0,7,1]]}'
    assert [p.gave_up for p in decode_series(old)] == [None]
    known = DepthPoint(AT, 1, 0, 0, 0, 7, 3, 2)
    assert decode_series(encode_series([known])) == [known]


def test_the_first_sample_of_a_bucket_stands_and_old_points_fall_off() -> None:
    """A second point for a bucket (or an earlier one, from a clock behind) is refused; the
    hour's series keeps 61 minutes."""
    hour = RESOLUTIONS["1h"]
    assert appended([_point(0)], _point(0, 9), hour) is None
    assert appended([_point(1)], _point(0), hour) is None
    series = [_point(m) for m in range(61)]
    longer = appended(series, _point(61), hour)
    assert longer is not None
    assert (len(longer), longer[0].at, longer[-1].at) == (61, _point(1).at, _point(61).at)


def test_a_bucket_starts_on_its_step() -> None:
    """10:07:42 is in the minute from 10:07, the 10 minutes from 10:00 and the hour from 10:00."""
    now = AT + timedelta(minutes=7, seconds=42)
    starts = {name: r.bucket(now) for name, r in RESOLUTIONS.items()}
    assert starts == {"1h": AT + timedelta(minutes=7), "24h": AT, "7d": AT}
