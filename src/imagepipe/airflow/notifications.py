"""Who hears what: delivery of a dataset's events to its subscribed targets through Airflow's notifiers.

Events: a change of the champion (promotion, forced promotion, rollback), a gate that failed (forced or not), a task
of the dataset's DAGs that failed after its retries, and a drift alarm of its batch scoring. Targets name Airflow
connections, never credentials:

    email:<address>         through Airflow's SMTP connection ([email] email_conn_id, smtp_default by default)
    slack:<connection id>   a Slack incoming-webhook connection
    webhook:<connection id> an HTTP connection: the event's JSON is POSTed to its URL (what a deployment pipeline
                            listens for)

A dataset declares them in dags/datasets.toml under [datasets.<name>.notify]; the default dataset in the environment,
IMAGEPIPE_NOTIFY_<EVENT> (e.g. IMAGEPIPE_NOTIFY_GATE_FAILED="email:ml@example.com,webhook:deploy"); both are checked
by imagepipe.subscriptions and read when a task sends, so a changed subscription needs no re-parse. Delivery never
changes the run's outcome: a target that cannot be reached is logged as an error naming it, as Airflow does for a
notifier callback that fails, because a notice must not undo or hold back the change it reports. Light at top level
(standard library and imagepipe only).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imagepipe.subscriptions import Target

if TYPE_CHECKING:
    from imagepipe.gate import Verdict
    from imagepipe.registry.champion import ChampionEntry

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[imagepipe]"


@dataclass(frozen=True)
class Notice:
    """One event as its targets get it: a one-line subject, the lines of its text, and its JSON for webhooks."""

    event: str
    dataset: str
    subject: str
    lines: tuple[str, ...]
    payload: dict = field(default_factory=dict)

    def json(self) -> dict:
        return {"event": self.event, "dataset": self.dataset, "summary": self.subject, **self.payload}

    def email_subject(self) -> str:
        return " ".join(f"{SUBJECT_PREFIX} {self.subject}".split())  # one header line, whatever the data held

    def html(self) -> str:
        """The e-mail's body; every value that came from data is escaped."""
        return (f"<p>{html.escape(self.subject)}</p>\n<pre>{html.escape(chr(10).join(self.lines))}</pre>\n"
                f"<p>dataset {html.escape(self.dataset)}, event {html.escape(self.event)}</p>")

    def slack_text(self) -> str:
        """Slack's mrkdwn with its three control characters escaped, so a label cannot ping or link."""
        text = "\n".join([self.subject, *self.lines])
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def champion_change(dataset: str, model_name: str, entry: ChampionEntry) -> Notice:
    """A promotion, forced promotion or rollback (a champion history entry)."""
    subject = (f"{model_name}: version {entry.version} is champion ({entry.kind}"
               f"{'' if entry.from_version is None else ', was version ' + str(entry.from_version)})")
    fields = {"model_name": model_name, "version": entry.version, "from": entry.from_version, "kind": entry.kind,
              "run_id": entry.run_id, "at": entry.at, "user": entry.user, "reason": entry.reason}
    lines = tuple(f"{name}: {value}" for name, value in fields.items() if value is not None)
    return Notice("champion_change", dataset, subject, lines, fields)


def gate_failed(dataset: str, model_name: str, version: int, verdict: Verdict, run_id: str,
                forced_reason: str | None = None) -> Notice:
    """A candidate's failed verdict: its failed checks first, then the rest of the verdict's lines."""
    from imagepipe.gate import explain

    failed = [check for check in verdict.checks if not check.passed]
    outcome = f"promotion forced: {forced_reason}" if forced_reason else "promotion skipped"
    subject = (f"{model_name}: version {version} failed its gate ({', '.join(check.name for check in failed)}); "
               f"{outcome}")
    lines = sorted(explain(verdict), key=lambda line: not line.startswith("FAIL"))  # stable: failed checks first
    payload = {"model_name": model_name, "version": version, "run_id": run_id, "forced": bool(forced_reason),
               "reason": forced_reason, "failed_checks": [check.name for check in failed],
               "checks": [check.detail for check in failed]}
    return Notice("gate_failed", dataset, subject, (*lines, f"run: {run_id}"), payload)


def first_line(error: BaseException) -> str:
    """An error's first line (or its class's name when it has no text): what a notice or a log line shows of it."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def run_failed(dataset: str, context) -> Notice:
    """A failed task: its DAG, run, task, try and the one line of its error (never its traceback, which may hold
    more than a user should read in an inbox)."""
    ti = context["ti"]
    error = context.get("exception")
    line = first_line(error) if error is not None else "unknown error"
    fields = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number,
              "error": line}
    subject = f"{ti.dag_id}: task {ti.task_id} failed in run {ti.run_id}"
    return Notice("run_failed", dataset, subject, tuple(f"{name}: {value}" for name, value in fields.items()), fields)


def drift(dataset: str, model_name: str, run_id: str, report) -> Notice:
    """A scoring run's drift alarm (a drift.DriftReport): the checks that crossed their thresholds, then the rest."""
    from imagepipe.drift import explain

    alarms = [check.name for check in report.checks if check.alarm]
    subject = (f"{model_name}: drift alarm in batch scoring ({', '.join(alarms)}) against version "
               f"{report.reference_version}")
    # explain gives one line per check, in the checks' order: the alarmed ones first.
    lines = [line for _, line in sorted(zip(report.checks, explain(report), strict=True),
                                        key=lambda pair: not pair[0].alarm)]
    payload = {"model_name": model_name, "version": report.reference_version, "run_id": run_id,
               "images": report.images, "alarms": alarms,
               "checks": {check.name: {"value": check.value, "threshold": check.threshold, "alarm": check.alarm}
                          for check in report.checks}}
    return Notice("drift", dataset, subject, (*lines, f"images: {report.images}", f"run: {run_id}"), payload)


def targets(dataset_name: str, event: str) -> tuple[Target, ...]:
    """The dataset's targets for the event, read now (not when the DAG file was parsed)."""
    from imagepipe import datasets

    return datasets.named(dataset_name).notify.get(event, ())


def send(notice: Notice, context=None) -> list[str]:
    """Deliver the notice to each of its dataset's targets for its event; returns the targets reached. A target that
    fails is logged as an error and the others still get it."""
    reached = []
    for target in targets(notice.dataset, notice.event):
        try:
            notifier(target, notice).notify(context or {})
        except Exception as error:  # noqa: BLE001 (any failure of one target is that target's, logged, see module doc)
            log.error("%s notice to %s not delivered: %s", notice.event, target, first_line(error))
        else:
            log.info("%s notice delivered to %s", notice.event, target)
            reached.append(str(target))
    return reached


def notifier(target: Target, notice: Notice):
    """Airflow's notifier for the target. Called through notify(), never __call__: __call__ renders its fields as
    Jinja templates, and text from data (a label) must not be a template."""
    if target.kind == "email":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=target.name, subject=notice.email_subject(), html_content=notice.html())
    if target.kind == "slack":
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(slack_webhook_conn_id=target.name, text=notice.slack_text())
    from airflow.providers.http.notifications.http import HttpNotifier

    return HttpNotifier(http_conn_id=target.name, json=notice.json(), headers={"Content-Type": "application/json"})


def on_task_failed(dataset_name: str):
    """The tasks' on_failure_callback for a dataset's DAGs: Airflow calls it once a task failed for good (a retry
    calls on_retry_callback instead)."""

    def failed(context) -> None:
        send(run_failed(dataset_name, context), context)

    failed.__name__ = f"notify_run_failed_{dataset_name}"
    return failed
