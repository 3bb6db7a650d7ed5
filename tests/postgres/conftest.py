"""Fixtures for the PostgreSQL tests: the database switch and a schema of each test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

pytest.importorskip("psycopg", reason="the postgres extra is not installed")

from hub_scheduler.adapters.postgres import drop_schema, schema_version
from hub_scheduler.domain.errors import BackendUnavailableError

POSTGRES_URL_ENV = "HUB_SCHEDULER_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The database to test against; skips when unset, so CI must set it."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set; PostgreSQL tests skipped")
    return url


@pytest.fixture
async def pg_url(postgres_url: str) -> str:
    """The database, checked to answer: a configured one that cannot be reached fails."""
    try:
        await schema_version(postgres_url, "hubtest-probe")
    except BackendUnavailableError as exc:
        pytest.fail(f"{POSTGRES_URL_ENV} is set but PostgreSQL cannot be reached: {exc}")
    return postgres_url


@pytest.fixture
async def pg_prefix(pg_url: str) -> AsyncIterator[str]:
    """A hub prefix (so a schema) no other test uses; the schema is dropped afterwards."""
    prefix = f"hubtest-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        await drop_schema(pg_url, prefix)
