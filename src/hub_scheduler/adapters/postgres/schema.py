"""The hub's tables in PostgreSQL: versioned migrations shipped in ``migrations/``.

Each hub lives in a schema of its own, named after its prefix, so hubs with different prefixes
share one database. `migrate` applies the migrations not yet recorded in the schema's
``schema_versions`` table, in order, in one transaction, under an advisory lock: it is
idempotent and safe to run from many processes at once. A backend opened on a schema that is
behind raises `SchemaVersionError` naming the command to run (``hub-scheduler db migrate``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import attrs
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import tuple_row

from hub_scheduler.domain.errors import BackendUnavailableError, SchemaVersionError

_FILE = re.compile(r"([0-9]{4})_([a-z0-9_]+)\.sql")
#: A schema name: PostgreSQL truncates identifiers beyond 63 bytes, so longer ones are refused.
_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,63}")
#: libpq settings every connection gets unless its URL says otherwise: give up connecting
#: after 5 s, and notice a peer gone silent (network cut, host down) within ~30 s instead of
#: waiting for a reply forever.
CONNECTION_DEFAULTS: dict[str, str | int] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


@attrs.frozen
class Migration:
    """One migration file: applied in `version` order, recorded by version and name."""

    version: int
    name: str
    text: str


def migrations() -> list[Migration]:
    """Every migration shipped with this package, oldest first."""
    found = []
    for entry in (resources.files(__package__) / "migrations").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1, 2, 3... without gaps: {versions}")
    return found


#: The schema version this code needs.
LATEST_VERSION = len(migrations())


def check_prefix(prefix: str) -> str:
    """`prefix` if it can name a schema, else `ValueError` (same characters as for Redis)."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            f"invalid prefix {prefix!r}: 1-63 letters, digits, '_', '.', ':' or '-' "
            "(it names the PostgreSQL schema)"
        )
    return prefix


def describe(prefix: str) -> str:
    """How errors name a hub's schema."""
    return f'PostgreSQL schema "{prefix}"'


def _lock_key(prefix: str) -> int:
    """The advisory lock that serialises migrations of one schema (a signed 64-bit int)."""
    digest = hashlib.sha256(f"hub_scheduler.migrate:{prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def application_name(prefix: str) -> str:
    """How the hub's sessions are named in ``pg_stat_activity`` (at most 63 bytes)."""
    return f"hub_scheduler {prefix}"[:63]


def conninfo(url: str, prefix: str) -> str:
    """`url` as libpq understands it, with `CONNECTION_DEFAULTS` and an application name for
    whatever it does not set itself."""
    given = conninfo_to_dict(url)
    extra = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in given}
    if "application_name" not in given:
        extra["application_name"] = application_name(prefix)
    return make_conninfo(url, **extra)


async def connect(url: str, prefix: str = "hub") -> psycopg.AsyncConnection[Any]:
    """A connection of its own (autocommit); `BackendUnavailableError` when it fails."""
    try:
        return await psycopg.AsyncConnection.connect(conninfo(url, prefix), autocommit=True)
    except psycopg.Error as exc:
        raise BackendUnavailableError("connect", type(exc).__name__) from None


async def current_version(conn: psycopg.AsyncConnection[Any], prefix: str) -> int:
    """The schema version recorded in `prefix`'s schema (0 when there is none)."""
    versions = sql.Identifier(prefix, "schema_versions")
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT to_regclass(%s) IS NOT NULL", [versions.as_string(conn)])
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    await cur.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(versions))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def schema_version(url: str, prefix: str = "hub") -> int:
    """The version of `prefix`'s schema at `url` (0 when it was never migrated)."""
    check_prefix(prefix)
    conn = await connect(url, prefix)
    try:
        return await current_version(conn, prefix)
    except psycopg.Error as exc:
        raise BackendUnavailableError("schema version", type(exc).__name__) from None
    finally:
        await conn.close()


async def require_current(conn: psycopg.AsyncConnection[Any], prefix: str) -> None:
    """Raise `SchemaVersionError` unless `prefix`'s schema is at `LATEST_VERSION` or newer."""
    version = await current_version(conn, prefix)
    if version < LATEST_VERSION:
        raise SchemaVersionError(describe(prefix), version, LATEST_VERSION)


async def migrate(url: str, prefix: str = "hub") -> list[str]:
    """Create or upgrade the schema of the hub `prefix` in the database at `url`.

    Returns the names of the migrations applied (``"0001_initial"``...), none when the schema
    was up to date. Several processes may call it at once: one applies, the others wait for
    it and find nothing left to do. Raises `BackendUnavailableError` when the database
    cannot be reached (or a migration fails; then nothing of this call is kept).
    """
    check_prefix(prefix)
    schema = sql.Identifier(prefix)
    versions = sql.Identifier(prefix, "schema_versions")
    conn = await connect(url, prefix)
    applied: list[str] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(prefix)])
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL)"
                ).format(versions)
            )
            done = await current_version(conn, prefix)
            # The functions the migrations create capture this search_path (FROM CURRENT).
            await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema))
            for migration in migrations():
                if migration.version <= done:
                    continue
                await conn.execute(migration.text.encode())
                label = f"{migration.version:04d}_{migration.name}"
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (version, name, applied_at) VALUES (%s, %s, %s)"
                    ).format(versions),
                    [migration.version, label, datetime.now(UTC)],
                )
                applied.append(label)
    except psycopg.Error as exc:
        raise BackendUnavailableError("migrate", f"{type(exc).__name__}: {exc}") from None
    finally:
        await conn.close()
    return applied


async def drop_schema(url: str, prefix: str) -> None:
    """Delete the hub `prefix` from the database at `url`: its schema and everything in it."""
    check_prefix(prefix)
    conn = await connect(url, prefix)
    try:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(prefix))
        )
    except psycopg.Error as exc:
        raise BackendUnavailableError("drop schema", type(exc).__name__) from None
    finally:
        await conn.close()
