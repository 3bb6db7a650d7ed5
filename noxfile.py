"""Checks: `nox` with no arguments runs what CI runs (lint, typecheck, tests)."""

import nox

# uv installs a session's environment in seconds (pip took ~90 s each, three times over on
# a fresh machine); plain venv + pip where uv is missing.
nox.options.default_venv_backend = "uv|venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests"]

# `speed` too: CI tests the worker as production runs it with hiredis, uvloop and orjson.
DEV = ".[dev,postgres,speed]"


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and the import-linter contracts."""
    session.install("-e", DEV)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src and tests."""
    session.install("-e", DEV)
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test suite; the real-Redis cases run when HUB_SCHEDULER_TEST_REDIS_URL is set."""
    session.install("-e", DEV)
    session.run("pytest", *session.posargs)
