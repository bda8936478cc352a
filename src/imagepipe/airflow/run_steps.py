"""The pipeline's Python tasks between its jobs: the gate's reading of the verdict (its decision written for promote),
the champion change announced, and a scoring run's drift alarm."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagepipe.registry.champion import ChampionEntry

log = logging.getLogger(__name__)


def verdict_passed(
    lake_root: str,
    run_id: str,
    model_name: str,
    registry_uri: str | None = None,
    force_promote: bool = False,
    force_reason: str | None = None,
    dataset_name: str = "default",
) -> bool:
    """Read the verdict of the run's candidate, log every check and record the decision (the run's gate record, which
    promote carries out); True lets promotion run: when every check passed, or when the run forces promotion with a
    reason (a force without one fails the task, promoting nothing). A failed verdict is announced to the dataset's
    gate_failed targets, forced or not."""
    from imagepipe.airflow import notifications
    from imagepipe.errors import InputError
    from imagepipe.gate import explain
    from imagepipe.lake import Lake
    from imagepipe.records import CandidateRecord, GateRecord
    from imagepipe.registry import open_registry

    if force_promote and not (force_reason or "").strip():
        raise InputError("force_promote is on but force_reason is empty: a forced promotion needs a reason; "
                         "nothing was promoted")
    lake = Lake(lake_root)
    version = lake.read_record(run_id, CandidateRecord).version
    verdict = open_registry(model_name, registry_uri, lake_root).verdict(version)
    if verdict is None:
        raise RuntimeError(f"version {version} of {model_name} has no verdict: evaluate did not write one")
    for line in explain(verdict):
        log.info(line)
    if verdict.passed:
        log.info("version %d passed its gate", version)
    elif force_promote:
        log.warning("version %d failed its gate: promotion is forced by the run's force_promote param: %s", version,
                    force_reason)
    else:
        log.info("version %d failed its gate: promotion is skipped", version)
    forced_reason = force_reason.strip() if force_promote and not verdict.passed else None
    lake.write_record(run_id, GateRecord(version, verdict.passed, forced_reason))
    if not verdict.passed:
        notifications.send(notifications.gate_failed(dataset_name, model_name, version, verdict, run_id, forced_reason))
    return verdict.passed or force_promote


def champion_change(lake_root: str, run_id: str, model_name: str, registry_uri: str | None = None,
                    dataset_name: str = "default") -> dict:
    """What the run's promotion changed, as the extra of the champion asset's event, announced to the dataset's
    champion_change targets. A run that kept the champion (a backfill) skips the task, so no event is sent and
    nothing scheduled on the champion runs for nothing. The pointer is the truth, not the promotion record: it names
    the run that wrote it, so a promote retried after its swap landed (which records "changed": false) still reports
    the change."""
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe.airflow import notifications
    from imagepipe.lake import Lake
    from imagepipe.records import PromotionRecord
    from imagepipe.registry import open_registry

    promotion = Lake(lake_root).read_record(run_id, PromotionRecord)
    registry = open_registry(model_name, registry_uri, lake_root)
    champion = registry.champion()
    if champion is None or champion.run_id != run_id or champion.kind == "rollback":
        why = promotion.skipped or "the champion was not changed by this run"
        raise AirflowSkipException(f"champion of {model_name} stays version {registry.champion_version()}: {why}")
    log.info("champion of %s changed from version %s to %d (%s)", model_name, champion.from_version, champion.version,
             champion.kind)
    notifications.send(notifications.champion_change(dataset_name, model_name, champion))
    return champion_event(champion, model_name)


def champion_event(entry: ChampionEntry, model_name: str) -> dict:
    """The extra of a champion asset event: which version became champion, from which, how, by which run, when."""
    return {"version": entry.version, "from": entry.from_version, "kind": entry.kind, "run_id": entry.run_id,
            "at": entry.at, "model_name": model_name}


def drift_alarm(lake_root: str, run_id: str, model_name: str, dataset_name: str = "default") -> dict:
    """The extra of the drift asset's event when the run's batch scoring raised a drift alarm, announced to the
    dataset's drift targets; a run without an alarm (or without a verdict) skips the task, sending no event, so a
    retraining scheduled on the asset runs only on an alarm."""
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe.airflow import notifications
    from imagepipe.drift import DriftReport, explain
    from imagepipe.lake import Lake
    from imagepipe.records import ScoringRecord

    record = Lake(lake_root).read_record(run_id, ScoringRecord).drift
    if record is None:
        raise AirflowSkipException("this scoring run had no image to judge drift on")
    report = DriftReport.from_json(record)
    lines = explain(report)
    if not report.alarm:
        raise AirflowSkipException(f"no drift alarm against version {report.reference_version}: {'; '.join(lines)}")
    for line in lines:
        log.warning(line)
    notifications.send(notifications.drift(dataset_name, model_name, run_id, report))
    return {"model_name": model_name, "version": report.reference_version, "run_id": run_id, "images": report.images,
            "alarms": [check.name for check in report.checks if check.alarm]}
