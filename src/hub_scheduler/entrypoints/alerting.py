"""Alerts as a deployment configures them: the channels and thresholds from `Settings`."""

from __future__ import annotations

import logging

from hub_scheduler.adapters.notifiers import AppriseNotifier, LoggingNotifier
from hub_scheduler.domain.ports import AlertChannel
from hub_scheduler.entrypoints.settings import Settings
from hub_scheduler.hub import Hub

logger = logging.getLogger("hub_scheduler.alerts")


def channel_of(settings: Settings) -> AlertChannel:
    """An `AppriseNotifier` for ``HUB_SCHEDULER_ALERT_URLS`` (recording only, in test mode),
    else a `LoggingNotifier`. Raises `ValidationError` for a URL apprise refuses."""
    routes = settings.alert_routes
    if not routes:
        return LoggingNotifier()
    return AppriseNotifier(routes, test_mode=settings.alert_test_mode)


def configure_alerts(hub: Hub, settings: Settings) -> None:
    """Give `hub` the configured alert channel and thresholds, unless its app chose its own
    channel in code or the settings turn alerts off; logs the channels (no secret)."""
    if not settings.alerts or hub.alerts is not None:
        return
    hub.alerts = channel_of(settings)
    hub.alert_policy = settings.alert_policy
    hub.dashboard_url = settings.dashboard_url


def log_alerts(hub: Hub) -> None:
    """Log where `hub`'s alerts go (no secret), once its scheduler started."""
    channel = hub.alerts
    if channel is None:
        return
    shown = channel.channels if isinstance(channel, AppriseNotifier) else [type(channel).__name__]
    test = isinstance(channel, AppriseNotifier) and channel.test_mode
    logger.info(
        "Alerts to %s%s", ", ".join(shown), " (test mode: recorded, not sent)" if test else "",
        extra={"alert_channels": shown},
    )  # fmt: skip
