"""Notifications: the notices' text with hostile data in it, and delivery through Airflow's notifiers to real SMTP
and HTTP receivers."""

from __future__ import annotations

import dataclasses
import logging

from receivers import CREDENTIALS, http_server, smtp_server

from imagepipe import subscriptions
from imagepipe.airflow import notifications
from imagepipe.airflow.notifications import Notice
from imagepipe.gate import Check, Verdict
from imagepipe.registry import ChampionEntry

HOSTILE = '<img src=x onerror=alert(1)> "森林" & {{ conn.smtp_default.password }}'
ENTRY = ChampionEntry(sequence=4, version=3, from_version=2, at="2026-12-07T10:00:00+00:00", kind="rollback",
                      run_id="manual__rb", user="alice", reason="version 3 mislabels\nbeaches", verdict=None,
                      made_champion={"2": [2], "3": [1, 4]})


def test_a_notice_escapes_what_came_from_data_for_each_medium():
    notice = Notice("gate_failed", "pets", f"version 2 failed: {HOSTILE}\nBcc: victim@example.com", (HOSTILE,),
                    {"label": HOSTILE})

    assert "<img" not in notice.html() and "&lt;img src=x onerror=alert(1)&gt;" in notice.html()
    assert "<img" not in notice.slack_text() and "&lt;img" in notice.slack_text()
    # The subject is one header line: a newline in the data cannot add a header.
    assert "\n" not in notice.email_subject() and notice.email_subject().startswith("[imagepipe] version 2 failed")
    assert notice.json()["label"] == HOSTILE  # JSON carries the value as it is; the receiver's encoder quotes it


def test_a_champion_change_says_which_version_from_which_how_who_and_why():
    notice = notifications.champion_change("pets", "pets", ENTRY)

    assert notice.subject == "pets: version 3 is champion (rollback, was version 2)"
    assert notice.json() | {"summary": None} == {
        "event": "champion_change", "dataset": "pets", "summary": None, "model_name": "pets", "version": 3,
        "from": 2, "kind": "rollback", "run_id": "manual__rb", "at": "2026-12-07T10:00:00+00:00", "user": "alice",
        "reason": "version 3 mislabels\nbeaches"}


def test_a_failed_gate_lists_its_failed_checks_first():
    verdict = Verdict(passed=False, notes=["champion is version 1"], checks=[
        Check("min_accuracy", "accuracy", 0.7, 0.9, True, "accuracy 0.9000 >= 0.7000 (minimum)"),
        Check("max_accuracy_drop", "accuracy", 0.82, 0.82, False, "accuracy drop 0.0800 > 0.0200")],
        thresholds={}, candidate_version=4, champion_version=1, run_id="scheduled__x")

    notice = notifications.gate_failed("default", "image_classifier", 4, verdict, "scheduled__x")

    assert notice.subject == ("image_classifier: version 4 failed its gate (max_accuracy_drop); "
                              "promotion skipped")
    assert notice.lines == ("FAIL max_accuracy_drop: accuracy drop 0.0800 > 0.0200",
                            "PASS min_accuracy: accuracy 0.9000 >= 0.7000 (minimum)", "NOTE champion is version 1",
                            "run: scheduled__x")
    assert notice.json()["failed_checks"] == ["max_accuracy_drop"] and notice.json()["forced"] is False


class Records(logging.Handler):
    """The records of one logger, however Airflow's logging setup has rewired the root logger (pytest's caplog
    hangs off the root)."""

    def __init__(self, logger: str):
        super().__init__(logging.INFO)
        self.records, self.logger = [], logging.getLogger(logger)

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.logger.addHandler(self)
        self.level, _ = self.logger.level, self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)

    def text(self) -> str:
        return "\n".join(f"{record.levelname} {record.getMessage()}" for record in self.records)


def test_each_target_gets_the_notice_and_one_that_fails_is_logged_without_stopping_the_others(monkeypatch):
    with smtp_server() as (mailbox, smtp), http_server() as (hook, webhook), http_server(503) as (_, broken):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp)
        monkeypatch.setenv("AIRFLOW_CONN_DEPLOY_HOOK", webhook)
        monkeypatch.setenv("AIRFLOW_CONN_BROKEN_HOOK", broken)
        monkeypatch.setenv("IMAGEPIPE_NOTIFY_CHAMPION_CHANGE",
                           "webhook:broken_hook,webhook:deploy_hook,email:ml@example.com")
        with Records("imagepipe.airflow.notifications") as logged:
            reached = notifications.send(notifications.champion_change("default", "image_classifier",
                                                                       dataclasses.replace(ENTRY, reason=HOSTILE)))

    assert reached == ["webhook:deploy_hook", "email:ml@example.com"]
    assert "ERROR champion_change notice to webhook:broken_hook not delivered: 503" in logged.text(), logged.text()
    [(to, subject, body)] = mailbox.texts()
    assert (to, subject) == ("ml@example.com", "[imagepipe] image_classifier: version 3 is champion (rollback, was "
                                               "version 2)")
    # The hostile reason is escaped HTML, and its template was not rendered: no connection's password leaked.
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "{{ conn.smtp_default.password }}" in body
    [payload] = hook.payloads()
    assert (payload["reason"], payload["user"]) == (HOSTILE, "alice")
    headers = hook.posts[0][1]
    assert headers["Content-Type"] == "application/json" and headers["Authorization"].startswith("Basic ")
    assert not any(secret in text for secret in CREDENTIALS for text in (body, hook.posts[0][2], logged.text()))


def test_a_dataset_without_subscriptions_sends_nothing(monkeypatch):
    for event in subscriptions.EVENTS:
        monkeypatch.delenv(f"IMAGEPIPE_NOTIFY_{event.upper()}", raising=False)
    assert notifications.send(notifications.champion_change("default", "image_classifier", ENTRY)) == []
