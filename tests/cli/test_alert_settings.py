"""Alert channels from the environment: HUB_SCHEDULER_ALERT_URLS for schedulers, its secrets
never shown, a URL apprise refuses stopping the scheduler with one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hub_scheduler import Hub
from hub_scheduler.adapters.notifiers import AppriseNotifier, LoggingNotifier
from hub_scheduler.entrypoints.alerting import configure_alerts
from hub_scheduler.entrypoints.cli import cli
from hub_scheduler.entrypoints.settings import Settings
from tests.cli.conftest import APP

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"


def test_alert_urls_become_apprise_routes_with_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HUB_SCHEDULER_ALERT_URLS gives the hub an apprise channel (test mode when asked) and
    the thresholds; the settings' repr shows no token."""
    monkeypatch.setenv("HUB_SCHEDULER_ALERT_URLS", f"critical={SLACK} mailto://a:pw1234@x.org")
    monkeypatch.setenv("HUB_SCHEDULER_ALERT_TEST_MODE", "true")
    monkeypatch.setenv("HUB_SCHEDULER_ALERT_FAILURE_RATE", "0.25")
    monkeypatch.setenv("HUB_SCHEDULER_DASHBOARD_URL", "https://jobs.example.com/admin")
    settings = Settings(url="memory://")
    hub = Hub("memory://")
    configure_alerts(hub, settings)
    assert isinstance(hub.alerts, AppriseNotifier)
    assert (hub.alerts.channels, hub.alerts.test_mode) == (
        ["critical=slack://***", "mailto://***"],
        True,
    )
    assert hub.alert_policy.failure_rate == 0.25
    assert hub.alert_monitor().dashboard == "https://jobs.example.com/admin"
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in repr(settings)
    assert hub.scheduler().alerts is not None


def test_without_urls_alerts_are_logged_and_can_be_turned_off() -> None:
    """No URL: alerts go to the log; HUB_SCHEDULER_ALERTS=false: schedulers evaluate none."""
    hub = Hub("memory://")
    configure_alerts(hub, Settings(url="memory://"))
    assert isinstance(hub.alerts, LoggingNotifier)
    off = Hub("memory://")
    configure_alerts(off, Settings(url="memory://", alerts=False))
    assert (off.alerts, off.scheduler().alerts) == (None, None)


def test_a_refused_alert_url_stops_the_scheduler_with_one_line() -> None:
    """A scheduler whose alert URL apprise refuses exits 2 with one line naming the scheme,
    never the secret."""
    result = CliRunner().invoke(
        cli,
        ["scheduler", APP, "--url", "memory://"],
        env={"HUB_SCHEDULER_ALERT_URLS": "nosuch://user:hunter22@host"},
    )
    assert result.exit_code == 2
    assert "nosuch://***" in result.stderr
    assert "hunter22" not in result.output + result.stderr
