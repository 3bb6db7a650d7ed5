"""One pipelined connection for a hub's scripts: each call is written at once, and replies are
matched to calls in order. ioredis works this way for BullMQ.

redis-py's asyncio client runs each command on its own pooled connection. It takes the
connection from the pool, encodes each argument in Python, waits for the reply with a timer,
and only then gives the connection back. Taking that path out cut the client's CPU per
``hub.enqueue`` from 178 to 112 µs (``python bench/enqueue_cpu.py --tree before=<checkout of
f094d08> --tree this=.``, median of 5).

Here redis-py still opens the connection and runs its handshake (TLS, AUTH, SELECT, the
client name, a Sentinel group's current master). This module then takes the transport over
(`asyncio.BaseTransport.set_protocol`). It packs commands with hiredis, parses replies with
hiredis, and maps error replies to redis-py's exceptions, so callers see the same errors and
the same replies as before (in the protocol redis-py agreed on: RESP3 unless the URL asks for
``?protocol=2``; RESP3 push notices are skipped).

- **Timeouts.** A watchdog checks once a second (twice per socket timeout when that is
  shorter). If the oldest call in flight has waited
  longer than the socket timeout, it closes the connection, and every call in flight fails
  with `redis.exceptions.TimeoutError`. No timer is armed per call.
- **Lost connections.** Calls in flight fail with `redis.exceptions.ConnectionError` (their
  effect is unknown, as on any connection). The next call opens a new connection.
- **Sentinel.** A ``READONLY`` reply means the master was demoted. The connection is closed
  and the call fails as lost; the next connection asks the sentinels again.

Used for one server and for a Sentinel group's master. A Cluster and fakeredis keep redis-py's
own path (`connection.pipelined` returns None for them), and so do hubs that wait for replicas
(`scripts.Scripts`: Redis reads nothing more from a client blocked in ``WAIT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio.connection import AbstractConnection, ConnectionPool

#: How often the watchdog looks at the oldest call in flight (at most: twice per timeout).
WATCHDOG_SECONDS = 1.0
#: What hiredis returns for a reply not yet complete (its default, False, is also a RESP3 reply).
_INCOMPLETE = object()


class Pipelined:
    """Commands to one Redis over one shared connection, opened on first use (see the module).

    Safe for any number of concurrent callers on one event loop. When the running loop
    changes (a new ``asyncio.run``), a new connection is opened on the new loop.
    """

    def __init__(self, pool: ConnectionPool, timeout: float) -> None:
        # Weak: the client's registry of these (`connection.pipelined`) is keyed by the pool.
        self._pool = weakref.ref(pool)
        self._timeout = timeout
        self._link: _Link | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._closed = False

    @classmethod
    def over(
        cls, pool: ConnectionPool, connection_types: tuple[type[Any], ...]
    ) -> Pipelined | None:
        """A `Pipelined` for `pool`'s server. None unless its connections are of
        `connection_types` (those `open_redis` makes for real servers) and return bytes."""
        kwargs = pool.connection_kwargs
        if not issubclass(pool.connection_class, connection_types) or kwargs.get(
            "decode_responses"
        ):
            return None
        return cls(pool, float(kwargs.get("socket_timeout") or 0))

    async def call(self, *args: Any) -> Any:
        """Run one command and return its reply; error replies raise redis-py's exceptions."""
        try:
            packed = hiredis.pack_command(args)
        except TypeError as exc:  # what redis-py raises for an argument it cannot send
            raise DataError(str(exc)) from None
        link = self._link
        if link is None or link.closed or link.loop is not asyncio.get_running_loop():
            link = await self._open()
        return await link.send(packed)

    async def _open(self) -> _Link:
        if self._closed:
            raise RedisConnectionError("The client is closed.")
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        async with self._opening[1]:
            link = self._link
            if link is not None and not link.closed and link.loop is loop:
                return link
            if link is not None:
                link.close()
            pool = self._pool()
            if pool is None:
                raise RedisConnectionError("The client is closed.")
            # redis-py's handshake, without asking for maintenance notices (Redis Enterprise
            # pushes them to be acted on; this connection would only drop them).
            options = {**pool.connection_kwargs, "maint_notifications_config": _NO_NOTICES}
            connection: AbstractConnection = pool.connection_class(**options)
            await connection.connect()  # type: ignore[no-untyped-call]
            link = _Link(_take_writer(connection), self._timeout, loop)
            if self._closed:  # closed while it connected
                link.close()
                raise RedisConnectionError("The client is closed.")
            self._link = link
            return link

    async def aclose(self) -> None:
        """Close the connection for good (calls in flight fail as lost, later ones at once)."""
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            link.close()
            if link.loop is asyncio.get_running_loop():
                await link.lost


def _take_writer(connection: AbstractConnection) -> asyncio.StreamWriter:
    """The stream writer of an open redis-py connection, which then lets go of it (so it
    neither reads from its transport nor closes it)."""
    writer = connection._writer
    assert writer is not None  # connected
    connection._writer = connection._reader = None
    return writer


_NO_NOTICES = MaintNotificationsConfig(enabled=False)


class _Link(asyncio.Protocol):
    """The protocol on a taken-over transport: a queue of calls awaiting replies."""

    def __init__(
        self, writer: asyncio.StreamWriter, timeout: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        # The writer is kept only so that it is not collected: its finaliser would close the
        # transport.
        self._writer = writer
        self.transport: Any = writer.transport
        self.loop = loop
        self.closed = False
        self.lost: asyncio.Future[None] = loop.create_future()
        self._timeout = timeout
        self._reader = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_INCOMPLETE,
        )
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._every = min(WATCHDOG_SECONDS, timeout / 2)
        self._watchdog = loop.call_later(self._every, self._watch) if timeout > 0 else None
        self.transport.set_protocol(self)

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._waiting.append((future, self.loop.time()))
        self.transport.write(packed)
        return future

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while True:
            try:
                reply = reader.gets()
            except InvalidResponse as exc:
                self._fail(functools.partial(RedisConnectionError, f"Protocol error: {exc}"))
                return
            if reply is _INCOMPLETE:
                return
            if isinstance(reply, hiredis.PushNotification):
                continue  # RESP3 (redis-py's default) may push notices no call asked for
            if not waiting:
                self._fail(lambda: RedisConnectionError("A reply nobody asked for."))
                return
            future, _ = waiting.popleft()
            if isinstance(reply, ReadOnlyError):
                # The master was demoted (a Sentinel failover): this call and those behind it
                # failed or will; the next connection asks the sentinels for the new master.
                waiting.appendleft((future, 0.0))
                self._fail(lambda: RedisConnectionError("The master became a replica."))
                return
            if future.done():
                continue  # its caller gave up waiting (cancelled)
            if isinstance(reply, Exception):
                # An error reply, as redis-py maps it: a ResponseError, or a ConnectionError
                # for LOADING, NOAUTH and the like.
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

        def lost() -> Exception:
            error = RedisConnectionError("Connection closed by server.")
            error.__cause__ = exc
            return error

        self._fail(lost)
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        """Close the transport; calls in flight fail as lost."""
        self._fail(lambda: RedisConnectionError("Connection closed."))

    def _watch(self) -> None:
        if self.closed:
            return
        if self._waiting and self.loop.time() - self._waiting[0][1] > self._timeout:
            self._fail(lambda: RedisTimeoutError("Timeout reading from socket"))
            return
        self._watchdog = self.loop.call_later(self._every, self._watch)

    def _fail(self, error: Callable[[], Exception]) -> None:
        """Close the transport and fail every call in flight with an `error()` of its own."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        if not self.loop.is_closed():  # else nobody can await them any more
            for future, _ in waiting:
                if not future.done():
                    future.set_exception(error())
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self.transport.abort()
