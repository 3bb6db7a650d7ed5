"""The README's Python examples run as written (each in a fresh interpreter, on memory://)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)


def _section(title: str) -> str:
    """The README text under the heading `title`, up to the next heading of its level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", TEXT, re.DOTALL | re.MULTILINE)
    assert match is not None, f"no section {title!r} in the README"
    return match.group(1)


def test_readme_has_examples() -> None:
    """The README shows Python examples (so the test below is not vacuous)."""
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    """Each example exits 0; the enqueue example prints the run's final state."""
    env = {k: v for k, v in os.environ.items() if k != "HUB_SCHEDULER_REDIS_URL"}
    result = subprocess.run(  # noqa: S603 - our own interpreter running the README's code
        [sys.executable, "-c", BLOCKS[index]],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if "# succeeded" in BLOCKS[index]:  # the example says what it prints
        assert result.stdout.strip().endswith("succeeded")


def test_testing_example_is_short_checks_and_never_sleeps() -> None:
    """'Testing your jobs' is one Python block under 30 lines that asserts and never sleeps."""
    [example] = re.findall(r"```python\n(.*?)```", _section("Testing your jobs"), re.DOTALL)
    code = [line for line in example.splitlines() if line.strip()]  # ruff format adds blanks
    assert len(code) < 30
    assert example.count("assert ") >= 4
    assert "sleep(" not in example
