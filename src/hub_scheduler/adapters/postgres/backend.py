"""The PostgreSQL backend: every port on one psycopg connection pool, opened from a URL.

``postgresql://`` and ``postgres://`` URLs (libpq's). The hub's tables live in a schema named
after its prefix; create or upgrade it with ``hub-scheduler db migrate`` (or `migrate`) before
opening, else the first operation raises `SchemaVersionError`. `open_postgres_backend` is what
`hub_scheduler.adapters.backends.open_backend` calls for these schemes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict

from hub_scheduler.adapters.postgres.audit import PostgresAuditLog
from hub_scheduler.adapters.postgres.presence import PostgresPresence
from hub_scheduler.adapters.postgres.queue import (
    PostgresDeadLetters,
    PostgresJobQueue,
    PostgresRunHistory,
)
from hub_scheduler.adapters.postgres.results import PostgresResults
from hub_scheduler.adapters.postgres.schedules import PostgresScheduleStore
from hub_scheduler.adapters.postgres.schema import migrate
from hub_scheduler.adapters.postgres.stats import PostgresStats
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.adapters.postgres.workflows import PostgresWorkflows
from hub_scheduler.domain.errors import InvalidBackendUrlError
from hub_scheduler.domain.ports import BackendConfig, BackendVitals
from hub_scheduler.domain.urls import redacted


@attrs.define
class PostgresSignals:
    """`Signals` on LISTEN/NOTIFY. The state changes notify (debounced, see `Debouncer`);
    each subscription holds a connection of its own. Behind a pooler in transaction mode,
    where LISTEN does not work, the engines fall back to polling."""

    store: PostgresStore = attrs.field(repr=False)

    def wakeups(self) -> AsyncIterator[bool]:
        """See `Signals.wakeups`."""
        return self.store.listen(self.store.wake_channel)

    def schedule_changes(self) -> AsyncIterator[bool]:
        """See `Signals.schedule_changes`."""
        return self.store.listen(self.store.schedule_channel)


@attrs.define
class PostgresSharedStore:
    """`SharedStore` on a ``shared`` table; expiry instants follow the hub's clock."""

    store: PostgresStore = attrs.field(repr=False)

    async def get(self, key: str) -> bytes | None:
        """See `SharedStore.get`."""
        row = await self.store.fetch_one(
            "shared get",
            self.store.q(
                "SELECT value FROM {s}.shared WHERE key = %s "
                "AND (expires_at IS NULL OR expires_at > %s)"
            ),
            [key, self.store.clock.now()],
        )
        return None if row is None else bytes(row["value"])

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        """See `SharedStore.set`."""
        expires = None if ttl is None else self.store.clock.now() + ttl
        await self.store.execute(
            "shared set",
            self.store.q(
                "INSERT INTO {s}.shared (key, value, expires_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
                "expires_at = EXCLUDED.expires_at"
            ),
            [key, value, expires],
        )

    async def delete(self, key: str) -> None:
        """See `SharedStore.delete`."""
        await self.store.execute(
            "shared delete", self.store.q("DELETE FROM {s}.shared WHERE key = %s"), [key]
        )

    async def ttl(self, key: str) -> timedelta | None:
        """See `SharedStore.ttl`."""
        now = self.store.clock.now()
        row = await self.store.fetch_one(
            "shared ttl",
            self.store.q("SELECT expires_at FROM {s}.shared WHERE key = %s AND expires_at > %s"),
            [key, now],
        )
        return None if row is None else row["expires_at"] - now

    async def clear(self) -> None:
        """See `SharedStore.clear`."""
        await self.store.execute("shared clear", self.store.q("DELETE FROM {s}.shared"))

    async def swap(
        self, key: str, expected: bytes | None, value: bytes, ttl: timedelta | None = None
    ) -> bool:
        """See `SharedStore.swap`: one statement, so a racing writer waits on the row lock and
        then finds the value changed."""
        now = self.store.clock.now()
        expires = None if ttl is None else now + ttl
        if expected is None:
            changed = await self.store.execute(
                "shared swap",
                self.store.q(
                    "INSERT INTO {s}.shared AS old (key, value, expires_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
                    "expires_at = EXCLUDED.expires_at "
                    "WHERE old.expires_at IS NOT NULL AND old.expires_at <= %s"
                ),
                [key, value, expires, now],
            )
        else:
            changed = await self.store.execute(
                "shared swap",
                self.store.q(
                    "UPDATE {s}.shared SET value = %s, expires_at = %s WHERE key = %s "
                    "AND value = %s AND (expires_at IS NULL OR expires_at > %s)"
                ),
                [value, expires, key, expected, now],
            )
        return changed == 1


@attrs.define(eq=False)
class PostgresBackend:
    """Every port of one hub on one PostgreSQL database. See `Backend`."""

    url: str
    config: BackendConfig
    store: PostgresStore = attrs.field(repr=False)
    queue: PostgresJobQueue = attrs.field(init=False, repr=False)
    dead_letters: PostgresDeadLetters = attrs.field(init=False, repr=False)
    history: PostgresRunHistory = attrs.field(init=False, repr=False)
    schedules: PostgresScheduleStore = attrs.field(init=False, repr=False)
    stats: PostgresStats = attrs.field(init=False, repr=False)
    audit: PostgresAuditLog = attrs.field(init=False, repr=False)
    presence: PostgresPresence = attrs.field(init=False, repr=False)
    results: PostgresResults = attrs.field(init=False, repr=False)
    signals: PostgresSignals = attrs.field(init=False, repr=False)
    shared: PostgresSharedStore = attrs.field(init=False, repr=False)
    workflows: PostgresWorkflows = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.queue = PostgresJobQueue(self.store)
        self.dead_letters = PostgresDeadLetters(self.store)
        self.history = PostgresRunHistory(self.store)
        self.schedules = PostgresScheduleStore(self.store)
        self.stats = PostgresStats(self.store)
        self.audit = PostgresAuditLog(self.store)
        self.presence = PostgresPresence(self.store)
        self.results = PostgresResults(self.store)
        self.signals = PostgresSignals(self.store)
        self.shared = PostgresSharedStore(self.store)
        self.workflows = PostgresWorkflows(self.store)

    async def ping(self) -> None:
        """See `Backend.ping`; also raises `SchemaVersionError` for a schema that is behind."""
        await self.store.ping()

    async def aclose(self) -> None:
        """See `Backend.aclose`."""
        await self.store.aclose()

    async def vitals(self) -> BackendVitals | None:
        """See `HasVitals.vitals`: the connections to the hub's database (every client's,
        from ``pg_stat_activity``) and the size of each of the hub schema's tables, indexes
        and TOAST included (``pg_total_relation_size``)."""
        row = await self.store.fetch_one(
            "vitals",
            b"SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()",
        )
        tables = await self.store.fetch(
            "vitals",
            b"SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c "
            b"JOIN pg_namespace n ON n.oid = c.relnamespace "
            b"WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            [self.store.prefix],
        )
        return BackendVitals(
            kind="postgresql",
            connections=None if row is None else int(row["n"]),
            table_bytes={str(t["name"]): int(t["bytes"]) for t in tables},
        )

    async def migrate(self) -> list[str]:
        """See `Migratable.migrate`."""
        return await migrate(self.store.url, self.store.prefix)


def check_url(url: str) -> None:
    """Raise `InvalidBackendUrlError` for a URL libpq would refuse (or a port that is no
    port), before anything connects; the error never repeats the URL (libpq's does)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise InvalidBackendUrlError("not a PostgreSQL connection URL") from None
    for port in str(params.get("port", "")).split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidBackendUrlError("the port must be a number from 1 to 65535")


def open_postgres_backend(
    url: str,
    config: BackendConfig,
    *,
    auto_migrate: bool = False,
    min_size: int = 1,
    max_size: int = 10,
) -> PostgresBackend:
    """The backend for a ``postgresql://`` or ``postgres://`` URL, connecting on first use.

    With `auto_migrate`, the first use also migrates the schema (tests and demos; in
    production run ``hub-scheduler db migrate`` as a deployment step). `min_size` and
    `max_size` bound the connection pool; each signal subscription uses one more connection.
    """
    check_url(url)
    store = PostgresStore(
        url,
        config.clock,
        config.prefix,
        retention=config.retention,
        payload_limit=config.payload_limit,
        auto_migrate=auto_migrate,
        min_size=min_size,
        max_size=max_size,
    )
    return PostgresBackend(redacted(url), config, store)
