"""Test-only tasks on the example app's broker: they report to Redis what they do."""

import asyncio
import os

import redis.asyncio as aioredis

from tests.taskiq.example_app import broker


@broker.task(task_name="stubborn")
async def stubborn(tag: str) -> str:
    """Block forever on its first start (the test SIGKILLs that worker), return after."""
    client = aioredis.Redis.from_url(os.environ["HUB_URL"])
    try:
        starts = await client.incr(os.environ["HUB_STARTS_KEY"])
        await client.rpush(os.environ["HUB_STARTED_KEY"], f"{tag}:{starts}")
    finally:
        await client.aclose()
    if starts == 1:
        await asyncio.Event().wait()
    return f"{tag} done"
