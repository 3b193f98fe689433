"""The notify and webhooks connector config: loaded as written, mistakes on their line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflow.config import ConfigError, load_config_text

GOOD = """\
connectors:
  notify:
    - url_env: SLACK_ALERT_URL
      on: [triage, sla_breach, connector_failing, volume_drop, dead_letter]
    - {url: "mailto://ops:pass@example.com", on: [dead_letter], quiet_for: 15m}
  webhooks:
    - url: https://example.com/hooks/leadflow
      secret_env: LEADFLOW_WEBHOOK_SECRET
      events: [lead.routed, lead.merged, lead.synced]
      allow_private: false
"""


def issues_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "leadflow.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_notify_and_webhooks_load_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_ALERT_URL", "slack://T1/B2/C3")
    connectors = load_config_text(GOOD, "leadflow.yaml").connectors

    slack, mail = connectors.notify
    assert slack.resolved_url() == "slack://T1/B2/C3"
    assert "triage" in slack.on
    assert slack.quiet_for == timedelta(hours=1)
    assert mail.resolved_url() == "mailto://ops:pass@example.com"
    assert mail.quiet_for == timedelta(minutes=15)
    (hook,) = connectors.webhooks
    assert hook.events == ["lead.routed", "lead.merged", "lead.synced"]
    assert hook.allow_private is False


def test_an_unknown_alert_kind_lists_the_valid_ones() -> None:
    text = "connectors:\n  notify:\n    - url: json://localhost\n      on: [triage, stalled]\n"

    (issue,) = issues_of(text)

    assert issue.startswith("leadflow.yaml:4: connectors.notify[0].on[1]: ")
    for kind in ("pipeline_stalled", "triage", "sla_breach", "dead_letter", "volume_drop"):
        assert kind in issue


def test_a_target_needs_exactly_one_url() -> None:
    text = "connectors:\n  notify:\n    - {url: json://a, url_env: B, on: [triage]}\n"

    assert issues_of(text) == [
        "leadflow.yaml:3: connectors.notify[0]: give exactly one of url or url_env"
    ]


def test_a_webhook_needs_an_http_url_and_known_events() -> None:
    text = """\
connectors:
  webhooks:
    - url: ftp://example.com/x
      secret_env: S
      events: [lead.routed]
    - url: https://example.com/x
      secret_env: S
      events: [lead.created]
"""
    issues = issues_of(text)

    assert issues[0] == (
        "leadflow.yaml:3: connectors.webhooks[0]: 'ftp://example.com/x' is not an absolute "
        "http(s) URL"
    )
    assert issues[1].startswith("leadflow.yaml:8: connectors.webhooks[1].events[0]: ")
    assert "'lead.routed', 'lead.merged' or 'lead.synced'" in issues[1]
