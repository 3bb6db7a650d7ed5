"""The OpenAPI document describes every answer: a concrete schema for each success body, and
each error as a problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from hub_scheduler import Hub
from tests.api.conftest import build_app, client_for

PROBLEM = {"$ref": "#/components/schemas/ProblemView"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def openapi() -> AsyncIterator[dict[str, Any]]:
    """The document the standalone app publishes (the same on every backend)."""
    async with Hub("memory://") as hub, client_for(build_app(hub)) as client:
        yield (await client.get("/schema/openapi.json")).json()


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _is_concrete(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """A schema that says what the body is: an object with properties, an array of concrete
    items, or a plain string (the Prometheus text)."""
    schema = _resolve(document, schema)
    if schema.get("type") == "array":
        return _is_concrete(document, schema["items"])
    if schema.get("type") == "object":
        return bool(schema.get("properties"))
    return schema.get("type") == "string"


async def test_every_success_response_has_a_concrete_schema(openapi: dict[str, Any]) -> None:
    """Each 2xx response of each operation documents its body's schema (no empty or
    any-object schema)."""
    vague = [
        (operation_id, status, media_type)
        for operation_id, operation in _operations(openapi)
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for media_type, content in response.get("content", {"": {}}).items()
        if not _is_concrete(openapi, content.get("schema", {}))
    ]
    assert vague == []
    assert len(_operations(openapi)) == 39


async def test_every_error_response_is_a_documented_problem(openapi: dict[str, Any]) -> None:
    """Each documented 4xx/5xx response is application/problem+json with the problem
    schema (not Litestar's default error shape); guarded routes list 401, 403 and 429."""
    wrong = [
        (operation_id, status)
        for operation_id, operation in _operations(openapi)
        for status, response in operation["responses"].items()
        if not status.startswith("2")
        and response.get("content") != {"application/problem+json": {"schema": PROBLEM}}
    ]
    assert wrong == []
    unguarded = sorted(
        operation_id
        for operation_id, operation in _operations(openapi)
        if not {"401", "403", "429"} <= set(operation["responses"])
    )
    assert unguarded == ["GET /api/v1/health", "GET /api/v1/ready"]
    problem = _resolve(openapi, PROBLEM)
    assert (sorted(problem["properties"]), sorted(problem["required"])) == (
        ["detail", "status", "title", "type"],
        ["detail", "status", "title", "type"],
    )
