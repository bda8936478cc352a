"""Subscriptions as a user writes them: targets by kind and connection, events by name, each mistake refused in one
line."""

from __future__ import annotations

import pytest

from imagepipe import subscriptions
from imagepipe.errors import InputError
from imagepipe.subscriptions import Target


def test_targets_name_a_kind_and_an_address_or_connection():
    assert Target.parse(" email:ml@example.com ") == Target("email", "ml@example.com")
    assert str(Target.parse("webhook:deploy_hook")) == "webhook:deploy_hook"
    assert Target.parse("slack:ml_alerts").kind == "slack"


@pytest.mark.parametrize(("text", "says"), [
    ("pager:oncall", "is not email:<address>, slack:<connection id> or webhook:<connection id>"),
    ("webhook:", "is not email:<address>"),
    ("webhook:two words", "is not email:<address>"),
    ("email:ml-team", "'ml-team' is not an e-mail address"),
])
def test_a_malformed_target_is_refused_in_one_line(text, says):
    with pytest.raises(InputError, match=says) as refused:
        Target.parse(text)
    assert "\n" not in str(refused.value)


def test_subscriptions_refuse_unknown_events_and_targets_not_in_a_list():
    assert subscriptions.subscriptions({"drift": ["slack:ml_alerts", "email:a@example.com"]}) == {
        "drift": (Target("slack", "ml_alerts"), Target("email", "a@example.com"))}
    with pytest.raises(InputError, match="unknown event 'gate_fail'; events: champion_change, gate_failed"):
        subscriptions.subscriptions({"gate_fail": ["email:a@example.com"]})
    with pytest.raises(InputError, match="gate_failed must be a list of targets"):
        subscriptions.subscriptions({"gate_failed": "email:a@example.com"})


def test_the_default_datasets_subscriptions_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_NOTIFY_GATE_FAILED", "email:ml@example.com, webhook:deploy")
    monkeypatch.setenv("IMAGEPIPE_NOTIFY_DRIFT", "")
    assert subscriptions.environment_subscriptions() == {
        "gate_failed": (Target("email", "ml@example.com"), Target("webhook", "deploy"))}
    monkeypatch.setenv("IMAGEPIPE_NOTIFY_RUN_FAILED", "sms:123")
    with pytest.raises(InputError, match=r"^IMAGEPIPE_NOTIFY_\*: notification target 'sms:123'"):
        subscriptions.environment_subscriptions()
