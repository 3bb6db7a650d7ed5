"""Settings from ``HUB_SCHEDULER_*`` environment variables."""

from __future__ import annotations

import ipaddress

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
MEMORY_URL = "memory://"


class Settings(BaseSettings):
    """What a deployment configures; every field reads ``HUB_SCHEDULER_<NAME>``.

    The backend URL is ``HUB_SCHEDULER_URL``; ``HUB_SCHEDULER_REDIS_URL`` (its older name) is
    read when it is unset.
    """

    model_config = SettingsConfigDict(env_prefix="HUB_SCHEDULER_", extra="forbid")

    url: str = Field(
        default=MEMORY_URL,
        validation_alias=AliasChoices(
            "url", "redis_url", "HUB_SCHEDULER_URL", "HUB_SCHEDULER_REDIS_URL"
        ),
        description="The backend: redis://, rediss://, memory:// (or a registered scheme).",
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
