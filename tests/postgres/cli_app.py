"""An app for the `db migrate` tests: one job; the test swaps `hub` for one on its prefix."""

from __future__ import annotations

from hub_scheduler import Hub

hub = Hub(prefix="cli-app")
hub.job("noop")(lambda _: None)
