"""Backend URLs: showing one without its secrets, and finding the one the environment names.

`redacted` is the one way hub_scheduler shows a URL (CLI output, logs, API errors, the
banner): ``redis://:***@host:6379/0``, ``postgresql://app:***@db/jobs?password=***``. It never
raises, however broken the URL. `scrubbed` removes a URL's secrets from any other text (a
driver's error message that quotes them).

`configured_url` is the one resolution of the backend URL from environment variables, used by
`Hub()` and by the CLI alike; first set (and non-empty) wins:

1. ``HUB_SCHEDULER_URL``
2. ``HUB_SCHEDULER_REDIS_URL`` (its older name)
3. ``REDIS_URL``
4. ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_PASSWORD``, ``REDIS_DB`` (any of them set; the
   others default to ``localhost``, ``6379``, no password and ``0``)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

import attrs

from hub_scheduler.domain.errors import ValidationError

MASK = "***"
MEMORY_URL = "memory://"
#: The backend URL; the first variable `configured_url` reads.
URL_ENV = "HUB_SCHEDULER_URL"
#: Its older name, read when `URL_ENV` is unset.
REDIS_URL_ENV = "HUB_SCHEDULER_REDIS_URL"
#: The seed application's variables, read when neither of ours is set.
SEED_URL_ENV = "REDIS_URL"
SEED_PARTS_ENV = ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB")

# A query parameter whose name says it holds a secret (password=, sslpassword=, token= ...).
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;][^=&;#]*(?:pass|pwd|secret|token)[^=&;#]*=)(?P<value>[^&;#]*)",
    re.IGNORECASE,
)
# Characters that cannot be in a well-formed user-info part: when the text between "//" and
# the last "@" holds one, the URL is broken (or has "@" in its path or query) and all of it goes.
_NOT_IN_USERINFO = frozenset("/?#[]")


def _split_userinfo(url: str) -> tuple[str, str, str] | None:
    """(before, userinfo, after) around the text between ``//`` (or the start, for a URL
    without a scheme) and the last ``@``; None when there is no ``@`` there."""
    _, sep, rest = url.partition("//")
    start = len(url) - len(rest) if sep else 0
    at = url.rfind("@")
    if at < start:
        return None
    return url[:start], url[start:at], url[at:]


def redacted(url: str) -> str:
    """`url` with every password it holds shown as ``***``; never raises.

    A password in the user-info part (``user:***@``) and the value of a query parameter
    named like one (``?password=***``, ``sslpassword``, ``token`` ...) are masked. When the
    URL is too broken to tell its parts apart, everything between ``//`` and the last ``@``
    is masked.
    """
    parts = _split_userinfo(url)
    if parts is not None:
        before, userinfo, after = parts
        if _NOT_IN_USERINFO.intersection(userinfo):
            userinfo = MASK
        else:
            user, colon, _ = userinfo.partition(":")
            userinfo = f"{user}:{MASK}" if colon else user
        url = before + userinfo + after
    return _SECRET_PARAMETER.sub(lambda m: m["name"] + MASK, url)


def secrets_of(url: str) -> list[str]:
    """The secrets `redacted` hides in `url`, as written and percent-decoded, longest first
    (what `scrubbed` removes from other text)."""
    found: set[str] = set()
    parts = _split_userinfo(url)
    if parts is not None:
        _, userinfo, _ = parts
        found.add(userinfo.partition(":")[2])
        if _NOT_IN_USERINFO.intersection(userinfo):
            # Broken: all of it, as `redacted` hides it, and since any "@" in it may be the
            # real end of the user info, the password up to each of them.
            found.add(userinfo)
            ends = [i for i, char in enumerate(userinfo) if char == "@"]
            found.update(userinfo[:end].partition(":")[2] for end in ends)
    found.update(m["value"] for m in _SECRET_PARAMETER.finditer(url))
    found |= {unquote(s) for s in found}
    found.discard("")
    return sorted(found, key=len, reverse=True)


def scrubbed(text: str, url: str | None) -> str:
    """`text` with the secrets of `url` (as written and decoded) replaced by ``***``, and
    `url` itself shown `redacted`."""
    if not url:
        return text
    text = text.replace(url, redacted(url))
    for secret in secrets_of(url):
        text = text.replace(secret, MASK)
    return text


@attrs.frozen
class ConfiguredUrl:
    """A backend URL found in the environment, and the variables it came from."""

    url: str
    source: str

    def __str__(self) -> str:
        return f"{redacted(self.url)} (from {self.source})"


def configured_url(env: Mapping[str, str]) -> ConfiguredUrl | None:
    """The backend URL `env` names (see the module docstring for the order); None when it
    names none. Empty variables count as unset; a ``REDIS_PORT`` or ``REDIS_DB`` that is not
    a number raises `ValidationError`."""
    for name in (URL_ENV, REDIS_URL_ENV, SEED_URL_ENV):
        if value := env.get(name, "").strip():
            return ConfiguredUrl(value, name)
    host, port, db = (env.get(name, "").strip() for name in SEED_PARTS_ENV[:2] + SEED_PARTS_ENV[3:])
    password = env.get("REDIS_PASSWORD", "")
    if not (host or port or password or db):
        return None
    for name, value in (("REDIS_PORT", port), ("REDIS_DB", db)):
        if value and not (value.isascii() and value.isdigit()):
            raise ValidationError(f"{name} must be a number, got {value!r}")
    host = host or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    userinfo = f":{quote(password, safe='')}@" if password else ""
    url = f"redis://{userinfo}{host}:{port or '6379'}/{db or '0'}"
    return ConfiguredUrl(url, "/".join(SEED_PARTS_ENV))


def url_from_environment(env: Mapping[str, str]) -> str:
    """The backend URL `env` names, else ``memory://`` (what `Hub()` opens)."""
    found = configured_url(env)
    return found.url if found else MEMORY_URL
