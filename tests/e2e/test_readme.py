"""The README's Python examples run as written (each in a fresh interpreter, on memory://)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


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
    if "hub.enqueue(" in BLOCKS[index]:
        assert result.stdout.strip().endswith("succeeded")
