"""What the DAGs need at run time, kept light (standard library and imagepipe only): the run's ingest window and
the gate's reading of the verdict. DAG files register these as template macros and task callables."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from imagepipe.windows import WATERMARK

if TYPE_CHECKING:
    from imagepipe.registry.champion import ChampionEntry

log = logging.getLogger(__name__)

INTERVAL_RUN_TYPES = ("scheduled", "backfill")
S3_CONNECTION = "imagepipe_s3"


def dataset_dag(dataset, dag_file: str, execution_timeout: timedelta) -> dict:
    """The DAG arguments every DAG of a dataset shares: its id (the DAG file's name, suffixed by the dataset's), a
    fixed start, no catch-up, one run at a time, and the task policy: retries with exponential backoff, a timeout
    that stops a stuck task, and a run_failed notice when a task failed for good."""
    from imagepipe.airflow.notifications import on_task_failed

    return {
        "dag_id": dataset.suffixed(Path(dag_file).stem),
        "start_date": datetime(2026, 11, 1, tzinfo=timezone.utc),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "retries": 2,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            "execution_timeout": execution_timeout,
            "on_failure_callback": on_task_failed(dataset.name),
        },
    }


def datasets_for_dag_file(dag_id_base: str) -> list:
    """The datasets a DAG file builds its DAGs (`dag_id_base`, suffixed) for: all of them, except in a task's own
    process, where Airflow parses the file to run one DAG's task and only that DAG is built (its parsing context)."""
    from airflow.sdk import get_parsing_context

    from imagepipe import datasets

    wanted = get_parsing_context().dag_id
    every = datasets.load()
    return [dataset for dataset in every if dataset.suffixed(dag_id_base) == wanted] or every


def timetable(schedule: str, retrain_on=None):
    """A dataset's schedule as Airflow's: cron data intervals in UTC (a preset such as @daily is a cron too), or None
    for a dataset run by hand only; with an asset to retrain on (its drift alarms), each of that asset's events also
    starts a run, whose window is everything not ingested yet, like a manual run's."""
    from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable

    cron = None if schedule == "none" else CronDataIntervalTimetable(schedule, timezone="UTC")
    if retrain_on is None:
        return cron
    return [retrain_on] if cron is None else AssetOrTimeSchedule(timetable=cron, assets=[retrain_on])


def refusals_fail_at_once(task_callable):
    """A Python task whose InputError fails the task at once, with its one line: a retry cannot change the answer
    (a force without a reason, a rollback to a version that was never champion). Other errors are retried."""

    @functools.wraps(task_callable)
    def refusing(*args, **kwargs):
        from airflow.sdk.exceptions import AirflowFailException

        from imagepipe.errors import InputError

        try:
            return task_callable(*args, **kwargs)
        except InputError as error:
            raise AirflowFailException(str(error)) from None

    return refusing


def run_type(dag_run) -> str:
    """The run's type by its name (scheduled, backfill, manual...). Templates need this macro: Jinja renders
    `dag_run.run_type`, an enum, as "DagRunType.BACKFILL", which no job recognises as a backfill."""
    return getattr(dag_run.run_type, "value", dag_run.run_type)


def no_lake_writer_running(dag_ids: list[str], context) -> None:
    """Hold a task back (a fault, so retried with backoff) while a run of any of these DAGs is queued or running:
    forgetting expires the lake's files, which a write in flight beside it would lose."""
    from airflow.sdk.exceptions import AirflowException

    busy = [dag_id for dag_id in dag_ids if context["ti"].get_dr_count(dag_id=dag_id, states=["queued", "running"])]
    if busy:
        raise AirflowException(f"{', '.join(busy)} has a run in progress, which may be writing the lake; "
                               "forgetting waits until it ends (retried)")


@functools.cache  # one parse of each job's file, however many datasets' DAGs a DAG file builds
def job_doc(job: str) -> str:
    """A job's docstring as its task's doc_md, read from the file (importing the job would slow every DAG parse):
    what the DAG's own checkout says of it."""
    import ast

    from imagepipe import settings

    path = settings.spark_job(job)
    return f"Spark job `{path.parent.name}/{path.name}`.\n\n{ast.get_docstring(ast.parse(path.read_text()))}"


def window_start(dag_run, params) -> str:
    """Scheduled and backfill runs start at their data interval; manual runs at the window_start param or, by
    default, at the ingest watermark (everything not ingested yet)."""
    if params.get("window_start"):
        return params["window_start"]
    if run_type(dag_run) in INTERVAL_RUN_TYPES and dag_run.data_interval_start is not None:
        return dag_run.data_interval_start.isoformat()
    return WATERMARK


def window_end(dag_run, params) -> str:
    """Scheduled and backfill runs end at their data interval's end; manual runs at the window_end param or, by
    default, at the moment the run was triggered (fixed for the run, so retries see the same window)."""
    if params.get("window_end"):
        return params["window_end"]
    if run_type(dag_run) in INTERVAL_RUN_TYPES and dag_run.data_interval_end is not None:
        return dag_run.data_interval_end.isoformat()
    return dag_run.run_after.isoformat()


def s3_endpoint_url(conn_id: str = S3_CONNECTION) -> str:
    """The object store's endpoint from the Airflow connection `imagepipe_s3` (its extra `endpoint_url`), or '' when
    there is no such connection: the jobs then use AWS_ENDPOINT_URL, or AWS itself. Credentials stay with the
    standard AWS chain; the connection only says where the store is."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id).extra_dejson.get("endpoint_url", "")
    except AirflowNotFoundException:
        return ""


def skip_without_new_images(lake_root: str, context) -> None:
    """pre_execute hook of the feature step: a window that brought no new images skips the rest of the run (the run
    stays green and the log says why), unless the run's require_new_images param is off (e.g. to retrain with other
    settings on the images already in the lake)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe.lake import Lake
    from imagepipe.records import IngestRecord

    if not context["params"].get("require_new_images", True):
        return
    report = Lake(lake_root).read_record(context["run_id"], IngestRecord)
    if report.ingested == 0:
        window = report.window
        raise AirflowSkipException(
            f"window [{window['start']}, {window['end']}) brought no new images (listed {report.listed}, "
            f"duplicates {report.duplicates}, rejected {sum(report.rejected.values())}): feature extraction, "
            "training, evaluation and promotion are skipped; trigger with require_new_images=false to retrain anyway"
        )


def skip_unless_retrain_due(lake_root: str, model_name: str, registry_uri: str | None, context) -> None:
    """pre_execute hook of the training step: a run whose new images are below the run's retrain_min_new_share of
    what the champion was trained on keeps the champion, skipping training, evaluation and promotion (green, the log
    says why). A run triggered by a drift alarm, one that retrains on purpose (require_new_images off, or
    train_as_of_version) and one whose settings the champion was not trained with always train."""
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe import retraining
    from imagepipe.classifiers import model_spec
    from imagepipe.errors import InputError
    from imagepipe.lake import Lake
    from imagepipe.registry import open_registry

    params = context["params"]
    if (not params.get("retrain_min_new_share") or run_type(context["dag_run"]) == "asset_triggered"
            or not params.get("require_new_images", True) or params.get("train_as_of_version") is not None):
        return
    try:
        model = model_spec(params["classifier"], params["hyperparameters"], params["feature_transforms"],
                           params["class_weights"], params["selection_folds"]).to_json()
    except InputError:
        return  # the job refuses the settings in its own words
    verdict = retraining.check_run(Lake(lake_root), open_registry(model_name, registry_uri, lake_root),
                                   context["run_id"], model, params.get("training_days"),
                                   params["retrain_min_new_share"])
    if not verdict.due:
        raise AirflowSkipException(verdict.reason)
    log.info("training: %s", verdict.reason)


def skip_unless_finetune(lake_root: str, context) -> None:
    """pre_execute hook of the fine-tune step: it runs only when the run's finetune param is on, and, like the
    feature step, only for a window that brought new images. Skipping it lets feature extraction run on the weights
    param as it is."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not context["params"].get("finetune", False):
        raise AirflowSkipException(
            "the run's finetune param is off: the backbone is not fine-tuned and extract_features uses the weights "
            f"param ({context['params'].get('weights')}) as they are; trigger with finetune=true to fine-tune first")
    skip_without_new_images(lake_root, context)


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
