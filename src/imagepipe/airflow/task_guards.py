"""What runs before or around a task's own work: a refusal that fails a Python task at once, and the pre_execute
hooks that hold a task back or skip it (and the rest of the run) with the reason in its log."""

from __future__ import annotations

import functools
import logging

from imagepipe.airflow.macros import run_type

log = logging.getLogger(__name__)


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


def no_lake_writer_running(dag_ids: list[str], context) -> None:
    """Hold a task back (a fault, so retried with backoff) while a run of any of these DAGs is queued or running:
    forgetting expires the lake's files, which a write in flight beside it would lose."""
    from airflow.sdk.exceptions import AirflowException

    busy = [dag_id for dag_id in dag_ids if context["ti"].get_dr_count(dag_id=dag_id, states=["queued", "running"])]
    if busy:
        raise AirflowException(f"{', '.join(busy)} has a run in progress, which may be writing the lake; "
                               "forgetting waits until it ends (retried)")


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
    what the champion was trained on keeps the champion, skipping training, evaluation and promotion (green; the log
    and the run's retrain record say why). A run triggered by a drift alarm, one that retrains on purpose
    (require_new_images off, or train_as_of_version) and one whose settings the champion was not trained with always
    train."""
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe import retraining
    from imagepipe.classifiers import model_spec
    from imagepipe.errors import InputError
    from imagepipe.lake import Lake
    from imagepipe.records import RetrainRecord
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
    lake = Lake(lake_root)
    check = retraining.check_run(lake, open_registry(model_name, registry_uri, lake_root), context["run_id"], model,
                                 params.get("training_days"), params["retrain_min_new_share"])
    lake.write_record(context["run_id"], RetrainRecord(check.due, check.reason))
    if not check.due:
        raise AirflowSkipException(check.reason)
    log.info("training: %s", check.reason)


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
