"""schemathesis against the live OpenAPI schema: no 5xx anywhere, every error problem+json."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from hub_scheduler.entrypoints.api.security import mint_token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SECRET = "f" * 40
TOKEN = mint_token(SECRET, "fuzz", "SystemAdmin", timedelta(hours=2))
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """The admin app served by uvicorn on a loopback port, on each backend."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_SCHEDULER_")}
    env["FUZZ_SECRET"] = SECRET
    env["FUZZ_PREFIX"] = f"hubtest-fuzz-{port}"
    if request.param == "redis":
        env["FUZZ_REDIS_URL"] = str(request.getfixturevalue("redis_url"))
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our app
        [sys.executable, "-m", "uvicorn", "tests.api.fuzz_app:app", "--port", str(port),
         "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{base}/api/v1/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the server is starting
        yield base
    finally:
        process.terminate()
        process.wait(10)
        if request.param == "redis":
            client = redis.Redis.from_url(env["FUZZ_REDIS_URL"])
            doomed = list(client.scan_iter(match=f"*{env['FUZZ_PREFIX']}*"))
            if doomed:
                client.delete(*doomed)
            client.close()


@pytest.fixture(scope="module")
def api_schema(server: str) -> Any:
    """The schema the running app publishes."""
    return schemathesis.openapi.from_url(f"{server}/schema/openapi.json")


CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_no_server_errors_and_problem_json(api_schema: Any, server: str) -> None:
    """Generated requests, valid and not, for every operation: never a 5xx, every error is
    problem+json with its status, and every answer is one the schema documents (status,
    content type and body)."""
    examples = int(os.environ.get("HUB_TEST_FUZZ_EXAMPLES", "400"))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=api_schema.as_strategy())
    def check(case: Any) -> None:
        response = case.call(base_url=server, headers=ADMIN)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
        if response.status_code >= 400:
            [content_type] = response.headers["content-type"]  # schemathesis keeps header lists
            assert content_type.startswith("application/problem+json")
            assert response.json()["status"] == response.status_code
        case.validate_response(response, checks=CONFORMANCE)

    check()
