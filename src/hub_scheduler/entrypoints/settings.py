"""Settings from ``HUB_SCHEDULER_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """What a deployment configures; every field reads ``HUB_SCHEDULER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HUB_SCHEDULER_", extra="forbid")

    redis_url: str = "memory://"
    prefix: str = "hub"
    jwt_secret: SecretStr | None = None
    rate_limit_reads: int = Field(default=300, ge=1, description="Read requests per minute.")
    rate_limit_mutations: int = Field(default=60, ge=1, description="Mutations per minute.")

    @property
    def is_memory(self) -> bool:
        """True for the in-memory demo backend."""
        return self.redis_url.startswith("memory://")
