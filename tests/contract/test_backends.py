"""Backends chosen by URL scheme: a registered scheme is what `open_backend` and `Hub` use, an
unknown one is a clear error that never echoes the URL, and built-ins load only when used.

(That a backend registered under a scheme passes the whole contract suite is shown by the
suite itself: its memory entry reaches fakeredis through a scheme registered per test.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import attrs
import pytest

from hub_scheduler import Hub
from hub_scheduler.adapters.backends import (
    known_schemes,
    open_backend,
    register_backend,
    unregister_backend,
)
from hub_scheduler.domain.errors import UnknownBackendError
from hub_scheduler.domain.ports import Backend, BackendConfig
from hub_scheduler.testing import FakeClock

BUILT_IN = [
    "memory",
    "postgres",
    "postgresql",
    "redis",
    "redis+cluster",
    "redis+sentinel",
    "rediss",
    "rediss+cluster",
    "rediss+sentinel",
    "unix",
]


@attrs.define
class Toy:
    """A backend factory that remembers what it was asked to open (a memory backend)."""

    opened: list[tuple[str, BackendConfig]] = attrs.field(factory=list)
    backends: list[Backend] = attrs.field(factory=list)

    def __call__(self, url: str, config: BackendConfig) -> Backend:
        self.opened.append((url, config))
        self.backends.append(open_backend("memory://", config))
        return self.backends[-1]


@pytest.fixture
def toy() -> Iterator[Toy]:
    """The toy factory registered under ``toy://`` for one test."""
    factory = Toy()
    register_backend("toy", factory)
    try:
        yield factory
    finally:
        unregister_backend("toy")


async def test_a_registered_scheme_serves_open_backend_and_hub(toy: Toy) -> None:
    """open_backend and Hub('toy://...') both call the toy factory with the hub's config."""
    config = BackendConfig(FakeClock(), "direct")
    opened = open_backend("TOY://anything", config)
    hub = Hub("toy://somewhere/else", prefix="shop")
    assert (opened, hub.backend) == (toy.backends[0], toy.backends[1])
    assert [(url, c.prefix) for url, c in toy.opened] == [
        ("TOY://anything", "direct"),
        ("toy://somewhere/else", "shop"),
    ]
    assert "toy" in known_schemes()
    hub.job("ping")(lambda _: None)
    run_id = await hub.enqueue("ping")
    assert (await toy.backends[1].history.get(run_id)).job == "ping"


def test_unregistering_a_scheme_makes_it_unknown_again() -> None:
    """After unregister_backend the scheme is gone from known_schemes and refused."""
    register_backend("toy", Toy())
    unregister_backend("toy")
    assert known_schemes() == BUILT_IN
    with pytest.raises(UnknownBackendError, match="unknown backend scheme 'toy'"):
        Hub("toy://x")


@pytest.mark.parametrize(
    ("url", "start"),
    [
        ("mysql://admin:s3cret@db.internal:3306/jobs", "unknown backend scheme 'mysql'"),
        ("admin:s3cret@localhost:6379/0", "a backend URL needs a scheme"),
    ],
)
def test_an_unknown_scheme_names_the_known_ones_never_the_url(url: str, start: str) -> None:
    """The error lists every known scheme and carries neither the URL nor its password."""
    with pytest.raises(UnknownBackendError) as caught:
        open_backend(url, BackendConfig(FakeClock()))
    known = ", ".join(f"{scheme}://" for scheme in BUILT_IN)
    assert str(caught.value) == f"{start}; known: {known}"
    assert caught.value.known == tuple(BUILT_IN)
    with pytest.raises(UnknownBackendError) as through_hub:
        Hub(url)
    assert "s3cret" not in str(through_hub.value)


#: Run in a fresh interpreter: the drivers loaded after each step, one line per step.
PROBE = """
import sys

def loaded():
    print(" ".join(m for m in ("redis", "fakeredis", "lupa") if m in sys.modules))

import hub_scheduler
loaded()
hub = hub_scheduler.Hub("redis://:s3cret@127.0.0.1:1/0")  # opening connects lazily
assert hub.url == "redis://:***@127.0.0.1:1/0", hub.url
loaded()
hub_scheduler.Hub("memory://")
loaded()
"""


def test_backends_are_imported_only_when_opened() -> None:
    """Importing hub_scheduler loads no driver; redis:// loads redis-py but never fakeredis or
    lupa; memory:// loads those (so the first two checks are not vacuous)."""
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines() == ["", "redis", "redis fakeredis lupa"]
