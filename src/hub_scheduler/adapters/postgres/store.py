"""What every PostgreSQL adapter of one hub shares: the connection pool, the hub's schema, the
clock, and the wake-up channel with its debouncer.

Connections come from a `psycopg_pool.AsyncConnectionPool` opened on first use (a backend can
be built outside an event loop, as `Hub(...)` at import time is). Each operation is one
statement or one call of a function the migrations created, in autocommit mode: one round
trip, one transaction. Driver errors become `BackendUnavailableError`; a schema that is
missing or behind becomes `SchemaVersionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, LiteralString

import attrs
import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hub_scheduler.adapters.postgres.schema import (
    check_prefix,
    connect,
    conninfo,
    migrate,
    require_current,
)
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.model import DEFAULT_PAYLOAD_LIMIT
from hub_scheduler.domain.ports import Clock

logger = logging.getLogger("hub_scheduler.postgres")

Connection = psycopg.AsyncConnection[DictRow]

#: Seconds an operation waits for a pooled connection before the store counts as unavailable.
POOL_TIMEOUT = 5.0
#: Seconds the pool keeps retrying one lost connection (1 s, 2 s, then capped) before it gives
#: up and the next operation starts afresh with an attempt at once. psycopg_pool's default
#: (5 min) doubles its waits, so a hub came back as long after the database as the database
#: had been down (a 17 s restart: 12 s more); with this, within ~2 s.
RECONNECT_TIMEOUT = 5.0
#: A signal subscription yields False after this many quiet seconds.
BLOCK_SECONDS = 2.0
#: At most one wake-up NOTIFY per this many seconds per process (the first one at once). It
#: must be shorter than the gaps between enqueues that should each wake a worker at once: in a
#: stream of one enqueue per less than a window, every trailing NOTIFY opens the next window,
#: so no enqueue is the leading edge again and each waits for a window's end (at 50 ms, one
#: enqueue per 20 ms reached an idle worker after ~23 ms at p50, ~49 ms at p99). What
#: debouncing buys is kept at 5 ms: with 8 concurrent enqueuers, a NOTIFY per enqueue cost
#: ~35 % of their throughput, a 5 ms window as little as never notifying (measured).
WAKE_WINDOW = 0.005
#: SQLSTATEs meaning the hub's tables or functions are not there (schema missing or behind).
MISSING = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.InvalidSchemaName,
    psycopg.errors.UndefinedColumn,
)


def channel_name(prefix: str, kind: str) -> str:
    """The NOTIFY channel of one hub for `kind` (at most 63 bytes, PostgreSQL's limit)."""
    name = f"hub_scheduler:{prefix}:{kind}"
    if len(name.encode()) <= 63:
        return name
    return f"hub_scheduler:{hashlib.sha256(prefix.encode()).hexdigest()[:32]}:{kind}"


@attrs.define(eq=False)
class Debouncer:
    """At most one wake-up per `window` seconds: the first at once, inside the operation
    that makes runs ready; later ones within the window are folded into one trailing NOTIFY
    when the window ends, so a folded run waits at most a window for its wake-up.

    NOTIFY serialises committing transactions on a global lock, so a NOTIFY per enqueue caps
    throughput (River debounces in application code for this reason). Wake-ups are only an
    optimisation: a lost or late one delays work by at most the workers' poll interval.

    For operations that commit on their own: `inline` is asked before one, `later` after it
    committed, so the trailing NOTIFY (on another connection) never precedes the runs it is
    about. An operation inside the caller's transaction notifies in that transaction instead
    (see `PostgresJobQueue.enqueue_in`).
    """

    send: Callable[[], Awaitable[None]]
    window: float = WAKE_WINDOW
    #: Where the debouncer reads time (seconds); the event loop's clock unless given.
    clock: Callable[[], float] | None = None
    _last: float = attrs.field(default=-math.inf, init=False)
    _trailing: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    #: The trailing NOTIFY is on its way: it may have committed already.
    _sending: bool = attrs.field(default=False, init=False)
    #: An operation asked for a wake-up while the trailing one was on its way.
    _again: bool = attrs.field(default=False, init=False)

    def _now(self) -> float:
        return self.clock() if self.clock else asyncio.get_running_loop().time()

    def inline(self) -> bool:
        """Whether the operation about to run should NOTIFY itself (counted as sent)."""
        now = self._now()
        if now - self._last >= self.window and self._trailing is None:
            self._last = now
            return True
        return False

    def later(self) -> None:
        """An operation made runs ready without notifying: a wake-up follows within the
        window (one for all such operations)."""
        if self._trailing is None:
            delay = max(0.0, self._last + self.window - self._now())
            self._trailing = asyncio.get_running_loop().create_task(self._after(delay))
        elif self._sending:
            # That NOTIFY may have committed before this operation did, and a worker it woke
            # may have looked before too: one more, a window after it.
            self._again = True

    async def _after(self, delay: float) -> None:
        try:
            while True:
                await asyncio.sleep(delay)
                self._sending = True
                self._last = self._now()
                await self.send()
                self._sending = False
                if not self._again:
                    return
                self._again = False
                delay = max(0.0, self._last + self.window - self._now())
        except Exception as exc:  # only an optimisation: the workers poll anyway
            logger.debug("wake-up not sent: %s", exc)
        finally:
            self._trailing = None
            self._sending = self._again = False

    async def aclose(self) -> None:
        """Drop a pending trailing wake-up."""
        if self._trailing is not None:
            self._trailing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trailing


def unavailable(operation: str, exc: BaseException) -> Exception:
    """The domain error for a driver error of `operation`."""
    return BackendUnavailableError(operation, type(exc).__name__)


@attrs.define(eq=False)
class PostgresStore:
    """The pool and the hub's schema on one database."""

    url: str
    clock: Clock
    prefix: str = attrs.field(default="hub", validator=lambda _, __, v: check_prefix(v))
    retention: timedelta = timedelta(days=90)
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT
    auto_migrate: bool = False
    min_size: int = 1
    max_size: int = 10
    wake_channel: str = attrs.field(init=False)
    schedule_channel: str = attrs.field(init=False)
    wakes: Debouncer = attrs.field(init=False)
    _queries: dict[tuple[str, ...], bytes] = attrs.field(factory=dict, init=False)
    _pool: AsyncConnectionPool[Connection] | None = attrs.field(default=None, init=False)
    _ready: bool = attrs.field(default=False, init=False)
    _opening: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        self.wake_channel = channel_name(self.prefix, "wake")
        self.schedule_channel = channel_name(self.prefix, "schedules")
        self.wakes = Debouncer(self._notify_wake)

    # --- queries ---------------------------------------------------------------------------

    def q(self, template: LiteralString, **fragments: LiteralString) -> bytes:
        """`template` ready to execute: ``{s}`` stands for the hub's schema (quoted), other
        ``{name}`` for the SQL text of fragment `name` (itself a template). Composed once."""
        key = (template, *(f"{k}={v}" for k, v in sorted(fragments.items())))
        query = self._queries.get(key)
        if query is None:
            schema = sql.Identifier(self.prefix)
            parts = {k: sql.SQL(v).format(s=schema) for k, v in fragments.items()}
            query = sql.SQL(template).format(s=schema, **parts).as_bytes(None)
            self._queries[key] = query
        return query

    def name(self, relation: str) -> str:
        """The quoted, schema-qualified name of one of the hub's tables or sequences."""
        return sql.Identifier(self.prefix, relation).as_string(None)

    # --- connections -----------------------------------------------------------------------

    async def _open(self) -> AsyncConnectionPool[Connection]:
        if self._pool is not None and self._ready:
            return self._pool
        async with self._opening:
            if not self._ready:
                if self.auto_migrate:
                    await migrate(self.url, self.prefix)
                # A connection of its own: an unreachable database fails at once here, where
                # the pool would keep trying for its timeout.
                conn = await connect(self.url, self.prefix)
                try:
                    await require_current(conn, self.prefix)
                finally:
                    await conn.close()
                self._ready = True
            if self._pool is None:
                self._pool = AsyncConnectionPool(
                    conninfo(self.url, self.prefix),
                    connection_class=psycopg.AsyncConnection[DictRow],
                    kwargs={"autocommit": True, "row_factory": dict_row},
                    min_size=self.min_size,
                    max_size=self.max_size,
                    timeout=POOL_TIMEOUT,
                    reconnect_timeout=RECONNECT_TIMEOUT,
                    open=False,
                    name=f"hub_scheduler:{self.prefix}",
                )
                await self._pool.open()
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self, operation: str) -> AsyncIterator[Connection]:
        """A pooled connection (autocommit) for `operation`; driver errors inside the block
        become domain errors."""
        try:
            pool = await self._open()
            async with pool.connection() as conn:
                yield conn
        except MISSING as exc:
            # Tables or functions gone: the next operation checks the version again and
            # says what to do (SchemaVersionError).
            self._ready = False
            raise unavailable(operation, exc) from exc
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise unavailable(operation, exc) from exc

    async def fetch(self, operation: str, query: bytes, params: Any = None) -> list[DictRow]:
        """All rows of one statement."""
        async with self.connection(operation) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def fetch_one(self, operation: str, query: bytes, params: Any = None) -> DictRow | None:
        """The first row of one statement, or None."""
        async with self.connection(operation) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def execute(self, operation: str, query: bytes, params: Any = None) -> int:
        """Run one statement; returns the number of rows it changed."""
        async with self.connection(operation) as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount

    async def ping(self) -> None:
        """Return when the database answers and the schema is current."""
        await self.fetch_one("ping", b"SELECT 1")

    async def aclose(self) -> None:
        """Close the pool (and drop a pending wake-up)."""
        await self.wakes.aclose()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close(timeout=5.0)

    # --- signals ---------------------------------------------------------------------------

    async def _notify_wake(self) -> None:
        await self.execute("wake", b"SELECT pg_notify(%s, '')", [self.wake_channel])

    async def listen(self, channel: str) -> AsyncIterator[bool]:
        """Yield False once listening on `channel`, then True per NOTIFY and False after each
        quiet `BLOCK_SECONDS`, on a connection of its own. A lost connection raises
        `BackendUnavailableError`."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo(self.url, self.prefix), autocommit=True
            )
        except psycopg.Error as exc:
            raise unavailable("listen", exc) from None
        try:
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                yield False
                while True:
                    heard = False
                    async for _ in conn.notifies(timeout=BLOCK_SECONDS):
                        heard = True
                        yield True
                    if not heard:
                        yield False
            except (psycopg.Error, OSError) as exc:
                raise unavailable("listen", exc) from exc
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
