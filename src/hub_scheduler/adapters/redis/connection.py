"""Open a Redis client for a URL: one server, a Cluster, a Sentinel group, or fakeredis.

==============================================  ==========================================
``redis://[:pw@]host:port/db``, ``rediss://``   one server (``unix://`` for a socket)
``redis+cluster://[:pw@]h:p[,h:p...]``          a Redis Cluster from any of its nodes
``redis+sentinel://[:pw@]h:p[,h:p...]/name[/db]``  the master of service `name`, found by
                                                the sentinels and followed across failovers
``memory://``                                   fakeredis, private to the process
==============================================  ==========================================

The ``rediss+`` variants use TLS. Query arguments are redis-py's (``?socket_timeout=2``,
``?ssl_cert_reqs=none``); ``sentinel_password`` is the sentinels' own password when they
have one; ``wait_replicas=N`` (with ``wait_timeout_ms``, default 1000) makes every change
return only once N replicas have it (`Durability`).

Every hub keeps all its keys under one hash tag, so on a Cluster all of a hub's keys, scripts
and pipelines go to one slot, and its wake-ups use sharded pub/sub there.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode

import attrs
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub_scheduler.adapters.redis.pipelined import Pipelined
from hub_scheduler.domain.errors import BackendUnavailableError, InvalidBackendUrlError

if TYPE_CHECKING:
    import fakeredis

MEMORY_SCHEME = "memory://"

#: Below redis-py 8's default 5 s socket timeout would kill blocking reads; we never block
#: longer than `BLOCK_SECONDS`, and give reads this much more room on top.
SOCKET_TIMEOUT = 10.0
BLOCK_SECONDS = 2.0

#: A client of one server (or of a Sentinel group's master), or of a whole Cluster.
RedisClient = aioredis.Redis | RedisCluster

_TIMEOUTS: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": 5.0}


def is_memory(url: str) -> bool:
    """True for the in-memory backend."""
    return url.startswith(MEMORY_SCHEME)


@attrs.frozen
class Topology:
    """A multi-host URL taken apart.

    Attributes:
        kind: ``"cluster"`` or ``"sentinel"``.
        nodes: the (host, port) pairs the URL lists.
        options: redis-py connection keyword arguments (credentials, db, TLS, query).
        service: the Sentinel service name (empty for a Cluster).
        sentinel_options: keyword arguments for the connections to the sentinels.
    """

    kind: str
    nodes: tuple[tuple[str, int], ...]
    options: dict[str, Any]
    service: str = ""
    sentinel_options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Durability:
    """How many replicas must have a change before it is acknowledged (Redis ``WAIT``).

    With 0 (the default) a change is acknowledged once the master has it; an asynchronous
    failover can then lose the last changes the master acknowledged but had not yet sent.
    With N, every state change is followed by ``WAIT N timeout_ms`` on its connection, and
    fails (`BackendUnavailableError`, the change itself may have happened) when fewer
    replicas confirm in time.
    """

    replicas: int = 0
    timeout_ms: int = 1000


def split_durability(url: str) -> tuple[str, Durability]:
    """`url` without its ``wait_replicas`` and ``wait_timeout_ms`` arguments, and them."""
    head, sep, query = url.partition("?")
    if not sep:
        return url, Durability()
    params = parse_qsl(query, keep_blank_values=True)
    values = dict(params)
    rest = [(k, v) for k, v in params if k not in {"wait_replicas", "wait_timeout_ms"}]
    replicas, timeout = values.get("wait_replicas", "0"), values.get("wait_timeout_ms", "1000")
    if not (replicas.isdigit() and timeout.isdigit() and int(timeout) > 0):
        raise InvalidBackendUrlError("wait_replicas and wait_timeout_ms must be whole numbers")
    if int(replicas) and "+cluster" in head.partition("://")[0]:
        raise InvalidBackendUrlError("wait_replicas is not supported on a Redis Cluster")
    trimmed = f"{head}?{urlencode(rest)}" if rest else head
    return trimmed, Durability(int(replicas), int(timeout))


def _nodes(text: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep:
            host, port = port, str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidBackendUrlError("each node must be host:port")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def _service_and_db(kind: str, path: str) -> tuple[str, str]:
    """The Sentinel service name and the database number in a URL's path."""
    segments = [s for s in path.split("/") if s]
    service, db = "", "0"
    if kind == "sentinel":
        if not segments:
            raise InvalidBackendUrlError("a Sentinel URL needs the service name: .../mymaster")
        service, *more = segments
        db = more[0] if more else "0"
    elif segments and segments != ["0"]:
        raise InvalidBackendUrlError("a Redis Cluster has only database 0")
    if not db.isdigit():
        raise InvalidBackendUrlError("the database must be a number")
    return service, db


def parse_topology(url: str) -> Topology:
    """The nodes and options of a ``redis+cluster://`` or ``redis+sentinel://`` URL.

    Raises `InvalidBackendUrlError` (which never repeats the URL) for a malformed one.
    """
    scheme, _, rest = url.partition("://")
    base, _, kind = scheme.lower().partition("+")
    if kind not in {"cluster", "sentinel"} or base not in {"redis", "rediss"}:
        raise InvalidBackendUrlError(f"unknown scheme {scheme}")
    rest, _, query = rest.partition("?")
    userinfo, _, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    if not hosts:
        raise InvalidBackendUrlError("it names no node")
    params = dict(parse_qsl(query, keep_blank_values=True))
    sentinel_password = params.pop("sentinel_password", None)
    service, db = _service_and_db(kind, path)
    # redis-py parses the credentials and query arguments of a one-host URL the same way.
    single = f"{base}://{userinfo + '@' if userinfo else ''}placeholder/{db}"
    try:
        options: dict[str, Any] = dict(
            parse_url(f"{single}?{urlencode(params)}" if params else single)
        )
    except ValueError as exc:
        raise InvalidBackendUrlError(str(exc).split(":")[0]) from None
    for key in ("host", "port", "path"):
        options.pop(key, None)
    tls = options.pop("connection_class", None) is SSLConnection
    sentinel_options: dict[str, Any] = {**_TIMEOUTS}
    if kind == "cluster":
        options.pop("db", None)
        if tls:
            options["ssl"] = True
    else:
        if tls:
            options["connection_class"] = SSLConnection
            sentinel_options["connection_class"] = SSLConnection
        if sentinel_password is not None:
            sentinel_options["password"] = sentinel_password
    return Topology(kind, _nodes(hosts, 26379 if kind == "sentinel" else 6379), options,
                    service, sentinel_options)  # fmt: skip


def open_redis(url: str, *, server: fakeredis.FakeServer | None = None) -> RedisClient:
    """A client for `url`. For ``memory://`` pass the hub's `server` (one per hub), or get a
    fresh one. Real connections get timeouts, so a dead Redis is noticed."""
    if is_memory(url):
        # Imported here: fakeredis and its Lua runtime cost a worker on real Redis ~10 MB.
        import fakeredis  # noqa: PLC0415
        from fakeredis.aioredis import FakeAsyncRedisConnection  # noqa: PLC0415

        kwargs: dict[str, Any] = {
            "connection_class": FakeAsyncRedisConnection,
            "server": server or fakeredis.FakeServer(),
        }
        pool = aioredis.ConnectionPool(**kwargs)
        return aioredis.Redis(connection_pool=pool)
    if "+" in url.partition("://")[0]:
        topology = parse_topology(url)
        if topology.kind == "cluster":
            nodes = [ClusterNode(host, port) for host, port in topology.nodes]
            return RedisCluster(startup_nodes=nodes, **_TIMEOUTS, **topology.options)
        sentinel = Sentinel(
            list(topology.nodes), sentinel_kwargs=topology.sentinel_options, **_TIMEOUTS
        )
        options = dict(topology.options)
        timed = (
            _TimedSendSentinelSSLConnection if options.pop("ssl", False)
            else _TimedSendSentinelConnection
        )  # fmt: skip
        master = sentinel.master_for(
            topology.service, connection_class=timed, **_TIMEOUTS, **options
        )
        return cast("aioredis.Redis", master)
    client = aioredis.Redis.from_url(url, **_TIMEOUTS, retry_on_timeout=False)
    pool = client.connection_pool
    pool.connection_class = _TIMED_SEND.get(pool.connection_class, pool.connection_class)
    return client


class _TimedSend:
    """A connection mixin: the socket timeout on writes as a timer (`asyncio.timeout`) where
    redis-py uses `asyncio.wait_for`, which makes a task for every command sent: ~20 µs of
    CPU per command, a sixth of a single enqueue. The same limit and the same error. Used
    for one server and for a Sentinel group's master; a Cluster keeps redis-py's own."""

    socket_timeout: float | None

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """Send `command` within the socket timeout (see the class)."""
        send = super().send_packed_command  # type: ignore[misc]
        timeout = self.socket_timeout
        if not timeout:
            await send(command, check_health)
            return
        self.socket_timeout = None  # for this send only: the timer below bounds it instead
        try:
            async with asyncio.timeout(timeout):
                await send(command, check_health)
        except TimeoutError:
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


class _TimedSendConnection(_TimedSend, Connection):
    pass


class _TimedSendSSLConnection(_TimedSend, SSLConnection):
    pass


class _TimedSendUnixConnection(_TimedSend, UnixDomainSocketConnection):
    pass


class _TimedSendSentinelConnection(_TimedSend, SentinelManagedConnection):
    pass


class _TimedSendSentinelSSLConnection(_TimedSend, SentinelManagedSSLConnection):
    pass


_TIMED_SEND: dict[type[Any], type[Any]] = {
    Connection: _TimedSendConnection,
    SSLConnection: _TimedSendSSLConnection,
    UnixDomainSocketConnection: _TimedSendUnixConnection,
}

#: The connections `open_redis` makes for real servers (one server, a Sentinel master).
_PIPELINED = (*_TIMED_SEND.values(), _TimedSendSentinelConnection,
              _TimedSendSentinelSSLConnection)  # fmt: skip


def pipelined(client: RedisClient) -> Pipelined | None:
    """The pipelined connection of `client`'s server (see `pipelined`; one per client, closed
    with it by `close`), or None for a Cluster, fakeredis, or a client `open_redis` did not
    make."""
    if isinstance(client, RedisCluster):
        return None
    pool = client.connection_pool
    if pool not in _PIPELINED_OF:
        _PIPELINED_OF[pool] = Pipelined.over(pool, _PIPELINED)
    return _PIPELINED_OF[pool]


#: Each client's pipelined connection, by its connection pool.
_PIPELINED_OF: weakref.WeakKeyDictionary[aioredis.ConnectionPool, Pipelined | None] = (
    weakref.WeakKeyDictionary()
)


async def close(client: RedisClient) -> None:
    """Close `client`, its pipelined connection and, for a Sentinel group's master, the
    connections to the sentinels."""
    if not isinstance(client, RedisCluster):
        connection = _PIPELINED_OF.pop(client.connection_pool, None)
        if connection is not None:
            await connection.aclose()
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


def is_cluster(client: RedisClient) -> bool:
    """True for a Cluster client (its wake-ups use sharded pub/sub)."""
    return isinstance(client, RedisCluster)


async def listen(client: RedisClient, channel: str) -> AsyncIterator[bool]:
    """Yield False once subscribed to `channel` (Redis confirmed it), then True for each
    message and False after each quiet `BLOCK_SECONDS` (so a reader can check whether to
    stop). Every read blocks less than redis-py's socket timeout; a lost connection raises
    `BackendUnavailableError` (the caller resubscribes). On a Cluster the channel is a
    sharded one, served by the node of the hub's slot."""
    if isinstance(client, RedisCluster):
        async for message in _listen_sharded(client, channel):
            yield message
        return
    pubsub = client.pubsub()  # not ignore_subscribe_messages=True: it hides the confirmation
    try:
        try:
            await pubsub.subscribe(channel)
            await _confirmed(pubsub.get_message, "subscribe")
            yield False
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=BLOCK_SECONDS
                )
                yield message is not None
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError("listen", type(exc).__name__) from exc
    finally:
        with contextlib.suppress(RedisError, OSError, RuntimeError):
            await pubsub.aclose()


async def _listen_sharded(client: RedisCluster, channel: str) -> AsyncIterator[bool]:
    """`listen` on a Cluster: SSUBSCRIBE on the node that serves the channel's slot."""
    pubsub = client.pubsub()
    try:
        try:
            await pubsub.ssubscribe(channel)
            await _confirmed(pubsub.get_sharded_message, "ssubscribe")
            yield False
            while True:
                message = await pubsub.get_sharded_message(
                    ignore_subscribe_messages=True, timeout=BLOCK_SECONDS
                )
                yield message is not None
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError("listen", type(exc).__name__) from exc
    finally:
        with contextlib.suppress(RedisError, OSError, RuntimeError):
            await pubsub.aclose()


async def _confirmed(read: Callable[..., Awaitable[Any]], kind: str) -> None:
    """Read up to the server's confirmation of a subscription (a message of type `kind`)."""
    async with asyncio.timeout(SOCKET_TIMEOUT):
        while True:
            message = await read(ignore_subscribe_messages=False, timeout=BLOCK_SECONDS)
            if message is not None and message.get("type") == kind:
                return
