"""Unique jobs through the hub: the key comes from the job and the payload fields named."""

from __future__ import annotations

import pytest

from hub_scheduler import Hub, JobContext, RunState
from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.limits import OnDuplicate, Uniqueness


async def _noop(ctx: JobContext) -> None:
    del ctx


async def test_one_unfinished_run_per_tenant() -> None:
    """unique=("tenant",): a second enqueue for the same tenant answers the first run; other
    tenants and other fields of the payload do not matter; an explicit idempotency key is
    the caller's own and bypasses uniqueness."""
    async with Hub("memory://") as hub:
        hub.job("syncXero", unique=("tenant",))(_noop)
        first = await hub.enqueue("syncXero", {"tenant": "acme", "full": True})
        again = await hub.enqueue("syncXero", {"tenant": "acme", "full": False})
        other = await hub.enqueue("syncXero", {"tenant": "globex"})
        own_key = await hub.enqueue("syncXero", {"tenant": "acme"}, idempotency_key="manual-1")
        assert again == first
        assert len({first, other, own_key}) == 3


async def test_replace_keeps_the_latest_waiting_run() -> None:
    """With OnDuplicate.REPLACE the latest enqueue is the one that waits; the earlier one is
    cancelled."""
    async with Hub("memory://") as hub:
        hub.job("reindex", unique=Uniqueness(on_duplicate=OnDuplicate.REPLACE))(_noop)
        first = await hub.enqueue("reindex", {"reason": "edit 1"})
        latest = await hub.enqueue("reindex", {"reason": "edit 2"})
        assert (await hub.history.get(first)).state is RunState.CANCELLED
        assert (await hub.history.get(latest)).payload == {"reason": "edit 2"}


def test_bad_uniqueness_is_refused_at_registration() -> None:
    """A field that is not a name, or an unknown policy, is refused when the job is declared."""
    hub = Hub("memory://")
    with pytest.raises(InvalidJobError, match="unique"):
        hub.job("a", unique=("",))(_noop)
    with pytest.raises(ValueError, match="overwrite"):
        Uniqueness(on_duplicate="overwrite")
