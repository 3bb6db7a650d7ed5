"""Backend URLs: shown without their secrets, and found in the environment in one order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_scheduler.domain.errors import ValidationError
from hub_scheduler.domain.urls import ConfiguredUrl, configured_url, redacted, scrubbed

MARK = "Zq9"  # starts every generated password; no other generated part holds a capital Z
_plain = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_any = st.text(min_size=0, max_size=20)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:s3cret@host", "redis://user:***@host"),
        ("redis://user:p:w@host", "redis://user:***@host"),
        ("redis://user:p@ss@host/0", "redis://user:***@host/0"),
        ("rediss://:s3cret@[::1]:6380/2", "rediss://:***@[::1]:6380/2"),
        ("redis://:s3cret@127.0.0.1:notaport/0", "redis://:***@127.0.0.1:notaport/0"),
        ("redis://:s3cret@[::1/0", "redis://:***@[::1/0"),
        ("redis://:pa/ss@host/0", "redis://***@host/0"),
        ("redis://host/0?next=a@b", "redis://***@b"),
        ("postgresql://app:s3cret@db:5432/jobs", "postgresql://app:***@db:5432/jobs"),
        ("postgres://db/jobs?password=s3cret&sslmode=require",
         "postgres://db/jobs?password=***&sslmode=require"),
        ("postgres://db/jobs?sslmode=require&sslpassword=s3cret",
         "postgres://db/jobs?sslmode=require&sslpassword=***"),
        ("unix:///run/redis.sock?db=0&PASSWORD=s3cret", "unix:///run/redis.sock?db=0&PASSWORD=***"),
        (":s3cret@localhost:6379", ":***@localhost:6379"),
        ("postgresql://app@db/jobs", "postgresql://app@db/jobs"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("memory://", "memory://"),
        ("", ""),
    ],
)  # fmt: skip
def test_a_url_is_shown_without_its_passwords(url: str, shown: str) -> None:
    """User-info and query passwords are masked, broken URLs conservatively, others kept."""
    assert redacted(url) == shown


@given(
    scheme=st.sampled_from(["redis", "rediss", "postgresql", "postgres", "nope", ""]),
    user=st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=8),
    password=st.builds(lambda tail: MARK + tail, _any),
    host=_plain,
    tail=st.sampled_from(["", "/0", ":6379/0", ":notaport/1", "/db?sslmode=require", "/0?a=@"]),
)
def test_no_password_survives_redaction(
    scheme: str, user: str, password: str, host: str, tail: str
) -> None:
    """Whatever the password holds and however broken the URL, it is not shown."""
    start = f"{scheme}://" if scheme else ""
    for url in (f"{start}{user}:{password}@{host}{tail}", f"{start}{host}/0?password={password}"):
        assert MARK not in redacted(url)
        assert MARK not in scrubbed(f"error at {url}: auth {password} refused", url)


@given(st.text())
def test_redaction_never_raises_and_is_stable(text: str) -> None:
    """Any text at all can be redacted, and redacting twice changes nothing more."""
    once = redacted(text)
    assert redacted(once) == once


def test_a_message_is_scrubbed_of_the_password_as_written_and_decoded() -> None:
    """Whether a message quotes the password percent-encoded or decoded, it shows ***."""
    url = "redis://:p%40ss@host/0"
    assert scrubbed("bad p%40ss or p@ss in " + url, url) == "bad *** or *** in redis://:***@host/0"


@pytest.mark.parametrize(
    ("env", "found"),
    [
        ({}, None),
        ({"HUB_SCHEDULER_URL": "", "REDIS_URL": "  "}, None),
        ({"HUB_SCHEDULER_URL": "redis://a/0", "HUB_SCHEDULER_REDIS_URL": "redis://b/0",
          "REDIS_URL": "redis://c/0", "REDIS_HOST": "d"},
         ConfiguredUrl("redis://a/0", "HUB_SCHEDULER_URL")),
        ({"HUB_SCHEDULER_REDIS_URL": "redis://b/0", "REDIS_URL": "redis://c/0"},
         ConfiguredUrl("redis://b/0", "HUB_SCHEDULER_REDIS_URL")),
        ({"REDIS_URL": "redis://c/0", "REDIS_HOST": "d"},
         ConfiguredUrl("redis://c/0", "REDIS_URL")),
        ({"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss w/rd",
          "REDIS_DB": "3"},
         ConfiguredUrl("redis://:p%40ss%20w%2Frd@cache:6380/3",
                       "REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB")),
        ({"REDIS_PASSWORD": "pw"},
         ConfiguredUrl("redis://:pw@localhost:6379/0",
                       "REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB")),
        ({"REDIS_HOST": "::1"},
         ConfiguredUrl("redis://[::1]:6379/0", "REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB")),
    ],
)  # fmt: skip
def test_the_environment_names_the_backend_in_one_order(
    env: dict[str, str], found: ConfiguredUrl | None
) -> None:
    """HUB_SCHEDULER_URL, HUB_SCHEDULER_REDIS_URL, REDIS_URL, then the REDIS_* parts."""
    assert configured_url(env) == found


def test_a_configured_url_says_where_it_came_from_without_its_password() -> None:
    """Shown, a configured URL is redacted and names its variable."""
    found = configured_url({"REDIS_URL": "redis://:s3cret@cache:6379/0"})
    assert str(found) == "redis://:***@cache:6379/0 (from REDIS_URL)"


@pytest.mark.parametrize("name", ["REDIS_PORT", "REDIS_DB"])
def test_a_redis_part_that_is_not_a_number_is_refused(name: str) -> None:
    """REDIS_PORT=x or REDIS_DB=x is one clear error naming the variable."""
    with pytest.raises(ValidationError, match=f"^{name} must be a number, got 'x'$"):
        configured_url({"REDIS_HOST": "cache", name: "x"})
