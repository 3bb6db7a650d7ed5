"""Key names come from one place: the Lua scripts get them generated from keys.py."""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Any

import pytest
from lupa.lua51 import LuaRuntime

from hub_scheduler.adapters.redis import scripts
from hub_scheduler.adapters.redis.keys import LAYOUT, Keys, key_fields, lua_key_name

# Sample parts per field name; the others get a string with the characters ids and job
# names use. Numbers go to Lua as numbers, as the scripts pass hour and day indexes.
SAMPLES: dict[str, object] = {"priority": 5, "kind": "h", "index": 478123}

# The names stored data already uses, for prefix "hub": changing one orphans that data.
STORED_NAMES = {
    "run": "{hub}:run:x.y-1",
    "archive": "{hub}:done:x.y-1",
    "ready": "{hub}:ready:5",
    "parked": "{hub}:parked:x.y-1",
    "history": "{hub}:history",
    "job_history": "{hub}:history:x.y-1",
    "state_history": "{hub}:history-state:x.y-1",
    "layout": "{hub}:layout",
    "layout_lock": "{hub}:layout-lock",
    "moving_history": "{hub}:moving:history",
    "moving_job_history": "{hub}:moving:history:x.y-1",
    "moving_state_history": "{hub}:moving:history-state:x.y-1",
    "runs": "{hub}:runs",
    "job_runs": "{hub}:runs:x.y-1",
    "jobs": "{hub}:jobs",
    "delayed": "{hub}:delayed",
    "active": "{hub}:active",
    "dead": "{hub}:dead",
    "paused": "{hub}:paused",
    "paused_jobs": "{hub}:paused-jobs",
    "limits": "{hub}:limits",
    "running": "{hub}:running:x.y-1",
    "held": "{hub}:held:x.y-1",
    "rates": "{hub}:rates",
    "rate": "{hub}:rate:x.y-1:x.y-1",
    "idempotency": "{hub}:idem:x.y-1",
    "workers": "{hub}:workers",
    "worker": "{hub}:worker:x.y-1",
    "schedule": "{hub}:schedule:x.y-1",
    "schedule_state": "{hub}:schedule-state:x.y-1",
    "schedule_ids": "{hub}:schedule-ids",
    "schedules_due": "{hub}:schedules-due",
    "schedule_order": "{hub}:schedule-order",
    "schedule_jobs": "{hub}:schedule-jobs",
    "ledger": "{hub}:ledger:x.y-1",
    "schedules_changed": "{hub}:schedules-changed",
    "stats": "{hub}:stats:x.y-1:h:478123",
    "stats_total": "{hub}:stats:x.y-1:total",
    "stats_queue": "{hub}:stats-queue",
    "audit": "{hub}:audit",
    "scheduler": "{hub}:scheduler:x.y-1",
    "schedulers": "{hub}:schedulers",
    "shared": "{hub}:shared:x.y-1",
    "wake": "{hub}:wake",
    "workflow": "{hub}:workflow:x.y-1",
    "workflows": "{hub}:workflows",
    "workflow_events": "{hub}:workflow-events",
}


def _lua_files() -> dict[str, str]:
    lua_dir = resources.files(scripts.__package__) / "lua"
    return {
        entry.name: entry.read_text() for entry in lua_dir.iterdir() if entry.name.endswith(".lua")
    }


def _code(lua: str) -> str:
    """Lua source without its ``--`` comments (no script has ``--`` inside a string)."""
    return re.sub(r"--[^\n]*", "", lua)


def _samples(name: str) -> list[object]:
    return [SAMPLES.get(field, "x.y-1") for field in key_fields(name)]


def _python_key(keys: Keys, name: str) -> str:
    member: Any = getattr(keys, name)
    value = member(*_samples(name)) if key_fields(name) else member
    assert isinstance(value, str)
    return value


@pytest.fixture(scope="module")
def lua_keys() -> Any:
    """Every generated key definition, evaluated by Lua 5.1 (Redis's) from the real preamble."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.execute("ARGV = {'{hub}'}")
    exports = ", ".join(f"{name} = {lua_key_name(name)}" for name in LAYOUT)
    return lua.execute(scripts.preamble() + f"return {{{exports}}}\n")


def test_no_lua_script_concatenates_onto_the_prefix() -> None:
    """No .lua file builds a name by concatenating onto ``P``; they use the K_* names only."""
    assert _lua_files(), "no Lua scripts found"
    offenders = [
        f"{name}: {line.strip()}"
        for name, text in _lua_files().items()
        for line in _code(text).splitlines()
        if re.search(r"\bP\s*\.\.", line)
    ]
    assert offenders == []


def test_no_lua_script_spells_a_key_suffix() -> None:
    """No .lua file has a string literal holding any key suffix of the layout, like ':active'."""
    pieces = {
        literal
        for template in LAYOUT.values()
        for literal, _, _, _ in string.Formatter().parse(template)
        if re.search(r"[a-z]", literal)
    }
    offenders = [
        f"{name}: {piece}"
        for name, text in _lua_files().items()
        for piece in sorted(pieces)
        if f"'{piece}'" in _code(text) or f'"{piece}"' in _code(text)
    ]
    assert offenders == []


@pytest.mark.parametrize("name", list(LAYOUT))
def test_lua_key_equals_python_key(lua_keys: Any, name: str) -> None:
    """The preamble's K_<NAME> gives exactly the string the Python Keys member gives."""
    value = lua_keys[name]
    lua_value = value(*_samples(name)) if key_fields(name) else value
    assert lua_value == _python_key(Keys(), name)


def test_layout_covers_every_key() -> None:
    """Every public Keys member but the prefix and its tagged form is a key of the layout."""
    members = {name for name in dir(Keys) if not name.startswith("_")} - {"prefix", "base"}
    assert members == set(LAYOUT)


def test_key_names_are_the_stored_ones() -> None:
    """Each key keeps the name stored data already has, byte for byte."""
    assert {name: _python_key(Keys(), name) for name in LAYOUT} == STORED_NAMES
