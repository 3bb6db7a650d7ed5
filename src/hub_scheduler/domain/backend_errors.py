"""Errors about what a backend can do and the state of its store; they join the error tree
of `hub_scheduler.domain.errors` (every one derives from `HubSchedulerError`)."""

from __future__ import annotations

from hub_scheduler.domain.errors import HubSchedulerError

#: The command that brings a store's schema up to date.
MIGRATE_COMMAND = "hub-scheduler db migrate"


class SchemaVersionError(HubSchedulerError):
    """The store's schema is older than this hub_scheduler needs (or was never created):
    migrate it before opening the backend."""

    def __init__(self, store: str, current: int, required: int) -> None:
        self.store = store
        self.current = current
        self.required = required
        self.command = MIGRATE_COMMAND
        state = "has no hub_scheduler tables" if current == 0 else f"is at version {current}"
        super().__init__(
            f"{store} {state}; this hub_scheduler needs version {required}: "
            f"run `{MIGRATE_COMMAND}` with the same URL and prefix first"
        )


class TransactionalEnqueueUnsupportedError(HubSchedulerError):
    """An enqueue was asked to join the application's transaction on a backend that cannot."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        super().__init__(
            f"the backend {backend} cannot enqueue inside your database transaction "
            "(connection=...); use a postgresql:// backend, or enqueue after your commit"
        )
