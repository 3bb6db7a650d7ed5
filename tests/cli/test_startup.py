"""The CLI starts light: commands that serve nothing load neither the web stack nor taskiq."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Run the CLI with these arguments, then print which heavy packages got imported.
PROBE = """
import json, sys
from hub_scheduler.entrypoints.cli.main import main
sys.argv = ["hub-scheduler", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
heavy = {"litestar", "taskiq", "taskiq_redis", "uvicorn", "jinja2", "prometheus_client"}
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["jobs", "--help"],
        ["worker", "--help"],
        ["serve", "--help"],
        ["schedules", "preview", "0 2 * * *", "--tz", "Australia/Sydney", "-n", "3"],
        ["check", "--url", "memory://"],
        ["jobs", "list", "--url", "memory://"],
    ],
    ids=" ".join,
)
def test_commands_that_serve_nothing_do_not_import_the_web_stack(args: list[str]) -> None:
    """`--version`, `--help`, `schedules preview`, and operator commands on a backend
    (whose results store would load taskiq-redis) never import litestar or taskiq."""
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert json.loads(done.stderr.splitlines()[-1]) == [], done.stderr
    assert done.stdout
