"""bench/compare.py's options and result tables, on made-up results (the benchmark never runs)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def compare() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("compare")
    finally:
        sys.path.remove(str(BENCH))


def drain(jobs_per_s: float, cpu_us: float, rss_mb: float = 50.0) -> dict[str, Any]:
    return {
        "jobs_per_s": jobs_per_s,
        "worker_cpu_us_per_job": cpu_us,
        "redis_cpu_us_per_job": 100.0,
        "redis_cmds_per_job": 10.0,
        "worker_rss_mb": rss_mb,
    }


def test_quick_is_a_small_single_pass_over_every_system_with_bullmq_first(
    compare: ModuleType,
) -> None:
    """`--quick` runs 1,000 jobs per phase once; every system, BullMQ (the baseline) first."""
    config, out, _ = compare.parse_args(["--quick"])

    assert (config.jobs, config.repeat, config.latency_jobs) == (1_000, 1, 100)
    assert config.systems == ("bullmq", "hub", "taskiq", "saq", "dramatiq", "floor")
    assert out.name == "compare.json"


def test_an_unknown_system_is_refused_with_exit_2(
    compare: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--systems hub,celery` names what is unknown and exits 2 before starting anything."""
    with pytest.raises(SystemExit) as exited:
        compare.parse_args(["--systems", "hub,celery"])

    assert exited.value.code == 2
    assert "unknown systems ['celery']" in capsys.readouterr().err


def test_each_metric_is_the_median_of_the_passes_that_measured_it(compare: ModuleType) -> None:
    """A failed pass is left out of the median and its error kept; values stay in pass order."""
    passes = [
        {"drain_c5": {**drain(300.0, 900.0), "redis_cmds_by_command": {"evalsha": 9}}},
        {"drain_c5": {"error": "RuntimeError: counter at 7 of 5000 after 120 s"}},
        {"drain_c5": drain(100.0, 700.0)},
        {"drain_c5": drain(200.0, 800.0)},
    ]

    merged = compare.median_of_passes(passes)["drain_c5"]

    assert (merged["jobs_per_s"], merged["worker_cpu_us_per_job"]) == (200.0, 800.0)
    assert merged["jobs_per_s_all"] == [300.0, 100.0, 200.0]
    assert (merged["passes"], merged["errors"]) == (3, [passes[1]["drain_c5"]["error"]])
    assert merged["redis_cmds_by_command"] == {"evalsha": 9}


def test_ratios_are_to_bullmq_and_a_missing_batch_api_shows_as_a_dash(compare: ModuleType) -> None:
    """Half BullMQ's drain rate is 0.50x, twice its CPU 2.00x; taskiq has no bulk column."""
    config, *_ = compare.parse_args(["--systems", "bullmq,hub,taskiq", "--concurrency", "5"])
    results = {
        "bullmq": {
            "enqueue_single": {"jobs_per_s": 4000.0},
            "enqueue_bulk": {"jobs_per_s": 8000.0},
            "drain_c5": drain(2000.0, 300.0),
            "worker": {"rss_mb": 80.0},
        },
        "hub": {
            "enqueue_single": {"jobs_per_s": 2000.0},
            "enqueue_bulk": {"jobs_per_s": 16000.0},
            "drain_c5": drain(1000.0, 600.0),
            "worker": {"rss_mb": 60.0},
        },
        "taskiq": {"enqueue_single": {"jobs_per_s": 3000.0}, "drain_c5": drain(500.0, 1200.0)},
    }

    table = compare.ratios(results, config)
    rows = {row[0]: row[1:] for row in compare.ratio_rows(results, config)}
    header = rows.pop("vs BullMQ")

    assert table["hub"]["drain c5/s"] == 0.5
    assert table["hub"]["wrk CPU µs/job c5"] == 2.0
    assert table["hub"]["enq bulk/s"] == 2.0
    assert table["hub"]["worker RSS MB"] == 0.75
    bulk = header.index("enq bulk/s ↑")
    assert (rows["hub_scheduler"][bulk], rows["taskiq-redis stream"][bulk]) == ("2.00x", "-")
    assert {"drain c5/s ↑", "lat p99 ms ↓", "worker RSS MB ↓"} <= set(header)


def test_the_harness_polls_and_the_jobs_incrs_are_not_counted_as_queue_commands(
    compare: ModuleType,
) -> None:
    """Of 10 jobs: 40 GETs (30 were our polls), 25 INCRs (10 the jobs'): 2.5 cmds/job."""
    before = compare.RedisCounters(calls={"get": 5, "incr": 3}, reads=100, cpu_s=1.0)
    after = compare.RedisCounters(calls={"get": 45, "incr": 28}, reads=170, cpu_s=1.002)

    delta = compare.redis_delta(before, after, 10, polls=30, incrs=10)

    assert delta["redis_cmds_by_command"] == {"get": 10, "incr": 15}
    assert delta["redis_cmds_per_job"] == 2.5
    assert delta["redis_reads_per_job"] == 3.9  # 70 reads, less our 30 polls and the INFO
    assert delta["redis_cpu_us_per_job"] == 200.0


def test_tables_reprints_a_saved_run_with_value_and_ratio_cells(
    compare: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--tables run.json` prints the README's "value (ratio)" cells from a saved run."""
    config, *_ = compare.parse_args(["--systems", "bullmq,hub", "--concurrency", "5"])
    saved = tmp_path / "run.json"
    saved.write_text(
        compare.json.dumps(
            {
                "date": "2026-12-02T18:00:00+00:00",
                "config": {**config.__dict__, "concurrencies": [5], "systems": ["bullmq", "hub"]},
                "load_average_1m": [1.5, 2.25],
                "systems": {
                    "bullmq": {"drain_c5": drain(2000.0, 300.0)},
                    "hub": {"drain_c5": drain(1000.0, 600.0)},
                },
            }
        )
    )

    assert compare.main(["--tables", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert "| hub_scheduler | - | - | 1,000 (0.50x) |" in printed
    assert "load average (1 min) 1.50-2.25" in printed


def test_tables_of_a_file_that_is_no_result_is_one_line_and_exit_2(
    compare: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON file without a run's config is refused in one line on stderr."""
    other = tmp_path / "other.json"
    other.write_text("{}")

    assert compare.main(["--tables", str(other)]) == 2
    assert capsys.readouterr().err == f"error: {other} is not a compare.py result (KeyError)\n"
