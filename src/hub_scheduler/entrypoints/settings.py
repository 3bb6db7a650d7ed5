"""Settings from ``HUB_SCHEDULER_*`` environment variables (and the seed's ``REDIS_*``)."""

from __future__ import annotations

import ipaddress
import os

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub_scheduler.domain.alerts import AlertPolicy, Route, parse_routes
from hub_scheduler.domain.urls import MEMORY_URL, url_from_environment

MIN_SECRET_LENGTH = 32

__all__ = ["MEMORY_URL", "MIN_SECRET_LENGTH", "Settings"]


def _environment_url() -> str:
    return url_from_environment(os.environ)


class Settings(BaseSettings):
    """What a deployment configures; every field reads ``HUB_SCHEDULER_<NAME>``.

    The backend URL is found as `Hub()` finds it (`hub_scheduler.domain.urls.configured_url`):
    ``HUB_SCHEDULER_URL``, else ``HUB_SCHEDULER_REDIS_URL``, ``REDIS_URL``, then
    ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``/``REDIS_DB``; else ``memory://``.
    Empty variables count as unset.
    """

    model_config = SettingsConfigDict(
        env_prefix="HUB_SCHEDULER_", extra="forbid", env_ignore_empty=True
    )

    url: str = Field(
        default_factory=_environment_url,
        description="The backend: redis://, rediss://, postgresql://, memory:// (or a registered "
        "scheme).",
    )
    prefix: str = "hub"
    jwt_secret: SecretStr | None = None
    rate_limit_reads: int = Field(default=300, ge=1, description="Read requests per minute.")
    rate_limit_mutations: int = Field(default=60, ge=1, description="Mutations per minute.")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDR networks of reverse proxies whose"
        " X-Forwarded-For and X-Forwarded-Proto are believed (none: both are ignored).",
    )

    alerts: bool = Field(
        default=True,
        description="Schedulers evaluate the alert rules (each alert sent once across replicas).",
    )
    alert_urls: SecretStr = Field(
        default=SecretStr(""),
        description="Where alerts go: whitespace-separated apprise URLs (mailto://, slack://,"
        " workflows://, tgram://, twilio://, ...), each optionally prefixed with tags:"
        " critical,high-priority=twilio://... (none: alerts are logged).",
    )
    alert_test_mode: bool = Field(
        default=False, description="Record alerts instead of sending them (apprise channels)."
    )
    alert_failure_rate: float = Field(default=0.10, gt=0, le=1)
    alert_failure_min_runs: int = Field(default=10, ge=1)
    alert_memory_ratio: float = Field(default=0.9, gt=0, le=1)
    dashboard_url: str = Field(
        default="/admin", description="The dashboard's address, for links in alerts."
    )

    @field_validator("alert_urls")
    @classmethod
    def _check_alert_urls(cls, value: SecretStr) -> SecretStr:
        parse_routes(value.get_secret_value())  # a ValidationError quotes no URL
        return value

    @property
    def alert_routes(self) -> list[Route]:
        """The alert channels (their URLs hold secrets: show them with `Route.shown`)."""
        return parse_routes(self.alert_urls.get_secret_value())

    @property
    def alert_policy(self) -> AlertPolicy:
        """The alert rules' thresholds."""
        return AlertPolicy(
            failure_rate=self.alert_failure_rate,
            failure_min_runs=self.alert_failure_min_runs,
            memory_ratio=self.alert_memory_ratio,
        )

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            ipaddress.ip_network(item, strict=False)  # a ValueError names the bad one
        return value

    @property
    def proxy_networks(self) -> list[str]:
        """The trusted proxies as networks (an address is a network of one)."""
        parts = filter(None, (part.strip() for part in self.trusted_proxies.split(",")))
        return [str(ipaddress.ip_network(part, strict=False)) for part in parts]

    @property
    def is_memory(self) -> bool:
        """True for the in-memory demo backend."""
        return self.url.startswith(MEMORY_URL)
