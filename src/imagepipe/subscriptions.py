"""Subscriptions: which targets hear which of a dataset's events, as a user declares them (dags/datasets.toml's
[datasets.<name>.notify], or IMAGEPIPE_NOTIFY_<EVENT> for the default dataset), checked. Targets name Airflow
connections, never credentials; imagepipe.airflow.notifications delivers to them. Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from imagepipe.errors import InputError

EVENTS = {
    "champion_change": "every change of the champion: promotion, forced promotion, rollback",
    "gate_failed": "a candidate that failed its gate, with the failed checks (also when promotion was forced)",
    "run_failed": "a task of the dataset's DAGs that failed after its retries",
    "drift": "a batch scoring run whose drift figures crossed their thresholds",
}
TARGET_KINDS = ("email", "slack", "webhook")


@dataclass(frozen=True)
class Target:
    kind: str  # one of TARGET_KINDS
    name: str  # an e-mail address, or an Airflow connection id

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, name = str(text).strip().partition(":")
        if kind not in TARGET_KINDS or not name.strip() or any(space in name for space in " \t\r\n"):
            raise InputError(f"notification target {text!r} is not email:<address>, slack:<connection id> or "
                             "webhook:<connection id>")
        if kind == "email" and "@" not in name:
            raise InputError(f"notification target {text!r}: {name!r} is not an e-mail address")
        return cls(kind, name.strip())

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


Subscriptions = dict  # event -> tuple[Target, ...]


def subscriptions(table) -> Subscriptions:
    """A [datasets.<name>.notify] table (event -> list of targets) checked; InputError names the first mistake."""
    if not isinstance(table, dict):
        raise InputError("notify must be a table of event = [targets]")
    unknown = sorted(set(table) - set(EVENTS))
    if unknown:
        raise InputError(f"notify: unknown event {unknown[0]!r}; events: {', '.join(EVENTS)}")
    checked = {}
    for event, targets in table.items():
        if not isinstance(targets, list):
            raise InputError(f"notify: {event} must be a list of targets, e.g. [\"email:ml@example.com\"]")
        checked[event] = tuple(Target.parse(target) for target in targets)
    return checked


def environment_subscriptions() -> Subscriptions:
    """The default dataset's subscriptions: IMAGEPIPE_NOTIFY_<EVENT>, comma-separated targets."""
    table = {}
    for event in EVENTS:
        text = os.environ.get(f"IMAGEPIPE_NOTIFY_{event.upper()}", "")
        if text.strip():
            table[event] = [target for target in text.split(",") if target.strip()]
    try:
        return subscriptions(table)
    except InputError as error:
        raise InputError(f"IMAGEPIPE_NOTIFY_*: {error}") from None
