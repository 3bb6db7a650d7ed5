"""PostgreSQL adapters (psycopg 3): every port of a `Backend` in one schema per hub, with
versioned migrations, ``FOR UPDATE SKIP LOCKED`` claims, LISTEN/NOTIFY wake-ups and
transactional enqueue. Install with ``pip install 'hub-scheduler[postgres]'``."""

from hub_scheduler.adapters.postgres.backend import PostgresBackend, open_postgres_backend
from hub_scheduler.adapters.postgres.schema import (
    LATEST_VERSION,
    drop_schema,
    migrate,
    schema_version,
)

__all__ = [
    "LATEST_VERSION",
    "PostgresBackend",
    "drop_schema",
    "migrate",
    "open_postgres_backend",
    "schema_version",
]
