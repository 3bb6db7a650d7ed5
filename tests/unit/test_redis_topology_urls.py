"""Cluster and Sentinel URLs: what they connect to, and clear errors that never leak a password."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import SSLConnection

from hub_scheduler.adapters.redis.connection import Durability, parse_topology, split_durability
from hub_scheduler.domain.errors import InvalidBackendUrlError
from hub_scheduler.domain.urls import redacted


def test_a_cluster_url_lists_its_nodes_and_credentials() -> None:
    """Every listed node seeds the cluster; a node without a port gets 6379."""
    topology = parse_topology("redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert topology.kind == "cluster"
    assert topology.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert topology.options["username"] == "app"
    assert topology.options["password"] == "p@ss"  # noqa: S105 - a test credential
    assert "db" not in topology.options


def test_a_sentinel_url_names_the_service_database_and_tls() -> None:
    """Sentinels default to 26379; TLS reaches both the master and the sentinels."""
    topology = parse_topology(
        "rediss+sentinel://:pw@s1,s2:26380/mymaster/2?sentinel_password=watch&socket_timeout=3"
    )
    assert topology.kind == "sentinel"
    assert topology.nodes == (("s1", 26379), ("s2", 26380))
    assert topology.service == "mymaster"
    assert topology.options["db"] == 2
    assert topology.options["password"] == "pw"  # noqa: S105 - a test credential
    assert topology.options["socket_timeout"] == 3.0
    assert topology.options["connection_class"] is SSLConnection
    assert topology.sentinel_options["password"] == "watch"  # noqa: S105 - a test credential
    assert topology.sentinel_options["connection_class"] is SSLConnection


def test_a_tls_cluster_url_asks_for_ssl() -> None:
    """``rediss+cluster://`` turns TLS on for every node."""
    assert parse_topology("rediss+cluster://h:7000").options["ssl"] is True


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel://:s3cret@h:26379", "needs the service name"),
        ("redis+cluster://:s3cret@h:7000/3", "only database 0"),
        ("redis+cluster://:s3cret@h:notaport", "host:port"),
        ("redis+cluster://:s3cret@", "names no node"),
        ("redis+sentinel://:s3cret@h/svc/x", "must be a number"),
        ("redis+sentinel://:s3cret@h/svc?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_a_malformed_url_says_why_without_the_password(url: str, reason: str) -> None:
    """The error names the problem; the URL (and its password) is never repeated."""
    with pytest.raises(InvalidBackendUrlError, match=reason) as caught:
        parse_topology(url)
    assert "s3cret" not in str(caught.value)


def test_a_multi_host_url_is_shown_with_its_password_redacted() -> None:
    """What the banner, `/queue` and errors show of a Cluster or Sentinel URL."""
    assert redacted("redis+cluster://app:s3cret@h1:7000,h2:7001") == (
        "redis+cluster://app:***@h1:7000,h2:7001"
    )
    assert (
        redacted("redis+sentinel://:s3cret@s1,s2/mymaster")
        == "redis+sentinel://:***@s1,s2/mymaster"
    )
    assert redacted("redis+cluster://h1:7000,h2:7001") == "redis+cluster://h1:7000,h2:7001"


def test_wait_replicas_is_taken_off_the_url_and_checked() -> None:
    """``wait_replicas``/``wait_timeout_ms`` are the hub's, not redis-py's; bad ones are refused."""
    bare, durability = split_durability("redis://h:6379/0?wait_replicas=1&socket_timeout=2")
    assert bare == "redis://h:6379/0?socket_timeout=2"
    assert durability == Durability(replicas=1, timeout_ms=1000)
    assert split_durability("redis://h/0") == ("redis://h/0", Durability())
    with pytest.raises(InvalidBackendUrlError, match="whole numbers"):
        split_durability("redis://:s3cret@h/0?wait_replicas=one")
    with pytest.raises(InvalidBackendUrlError, match="not supported on a Redis Cluster"):
        split_durability("redis+cluster://h:7000?wait_replicas=1")
