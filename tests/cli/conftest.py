"""The CLI tests' fixture: `hub-scheduler` run against the sample app on a fresh key prefix."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from typing import TypeVar

import attrs
import pytest
from click.testing import CliRunner, Result

from hub_scheduler import Hub
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import AuditEntry, Failed
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.entrypoints.cli import cli
from tests.cli import sample_app
from tests.conftest import drop_keys

T = TypeVar("T")
APP = "tests.cli.sample_app:hub"


@attrs.define
class SampleCli:
    """Runs the CLI on the sample app; `url` and `prefix` say where its keys are."""

    url: str
    prefix: str

    def __call__(self, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
        """``hub-scheduler ARGS --app <sample> --url <test Redis>``."""
        return self.bare(*args, "--url", self.url, env=env)

    def bare(self, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
        """``hub-scheduler ARGS --app <sample>``: the backend comes from `args` or `env`."""
        return CliRunner().invoke(cli, [*args, "--app", APP], env=env)

    def within(self, action: Callable[[Hub], Awaitable[T]]) -> T:
        """Run `action` on a hub of the sample app on the test Redis (its own event loop)."""

        async def go() -> T:
            async with sample_app.make_hub(self.prefix, self.url) as hub:
                return await action(hub)

        return asyncio.run(go())

    def audit(self) -> list[tuple[str, str, str, str | None, str, tuple[str, ...]]]:
        """(action, target, outcome, channel, actor, roles) of every audit entry, oldest first."""

        async def entries(hub: Hub) -> list[AuditEntry]:
            return list((await hub.audit.list(limit=500)).items)

        return [
            (e.action, e.target, e.outcome, e.channel, e.actor, e.roles)
            for e in reversed(self.within(entries))
        ]

    def enqueue(self) -> str:
        """A waiting run of ``record``; returns its id."""
        return self.within(lambda hub: hub.enqueue("record"))

    def start_one(self) -> str:
        """A run of ``record`` claimed by a worker, so active (the oldest waiting one, when
        others wait); returns its id."""

        async def go(hub: Hub) -> str:
            await hub.enqueue("record")
            [claim] = await hub.queue.claim("w", 1, timedelta(seconds=30))
            return claim.run.id

        return self.within(go)

    def kill_one(self) -> str:
        """A dead letter of ``record`` (the oldest waiting run, when others wait); returns its
        id."""

        async def go(hub: Hub) -> str:
            await hub.enqueue("record")
            [claim] = await hub.queue.claim("w", 1, timedelta(seconds=30))
            await hub.queue.finish(claim, Failed(ErrorInfo("ValueError", "broken"), GiveUp(1)))
            return claim.run.id

        return self.within(go)


@pytest.fixture
def sample_cli(
    redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SampleCli]:
    """The sample app's hub on a fresh prefix (the CLI moves it to the test Redis with
    ``--url``); its keys are dropped afterwards, never the whole database."""
    monkeypatch.setattr(sample_app, "hub", sample_app.make_hub(key_prefix))
    tool = SampleCli(redis_url, key_prefix)
    yield tool
    tool.within(drop_keys)


#: Apps that cannot be loaded, by what goes wrong (module name -> source).
BAD_APPS = {
    "raises": 'raise RuntimeError("boom")\n',
    "syntax": "def broken(:\n",
    "scheme": 'from hub_scheduler import Hub\nhub = Hub("foo://")\n',
    "prefix": 'from hub_scheduler import Hub\nhub = Hub("memory://", prefix="bad prefix{}")\n',
    "twice": (
        'from hub_scheduler import Hub\nhub = Hub("memory://")\n'
        '@hub.job("a")\nasync def a(ctx): ...\n@hub.job("a")\nasync def b(ctx): ...\n'
    ),
    "exits": "import sys\nsys.exit(3)\n",
}


@pytest.fixture(scope="session")
def bad_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """APP paths of apps that fail to load (see `BAD_APPS`), importable for the session."""
    folder = tmp_path_factory.mktemp("bad_apps")
    for name, source in BAD_APPS.items():
        (folder / f"hubcli_bad_{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    yield {name: f"hubcli_bad_{name}:hub" for name in BAD_APPS}
    sys.path.remove(str(folder))
