"""The rollback DAG as Airflow loads it, run against a real registry; and how the pipeline DAG hands its promotion
params (backfill) to the promote job."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from receivers import CREDENTIALS, http_server

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "image_classifier_rollback"
MODEL = "image_classifier"


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("rollback") / "registry")


@pytest.fixture(scope="module")
def bag(registry_root):
    from airflow.dag_processing.dagbag import DagBag

    # The DAG files read the registry root from the environment when they are parsed.
    saved = os.environ.get("IMAGEPIPE_REGISTRY_URI")
    os.environ["IMAGEPIPE_REGISTRY_URI"] = registry_root
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        os.environ.pop("IMAGEPIPE_REGISTRY_URI") if saved is None else os.environ.update(IMAGEPIPE_REGISTRY_URI=saved)
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def dag(bag):
    return bag.dags[DAG_ID]


def test_rollback_dag_is_manual_only_documented_and_retried_with_a_timeout(dag):
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: runs only when triggered
    assert "Image classifier rollback" in dag.doc_md
    assert {"imagepipe", "registry"} <= set(dag.tags)
    [task] = dag.tasks
    assert task.task_id == "rollback"
    assert task.retries >= 1 and task.retry_exponential_backoff > 1 and task.execution_timeout is not None


def test_rollback_params_need_a_reason_and_take_an_optional_positive_version(dag):
    from airflow.sdk.exceptions import ParamValidationError

    for name, value in {"reason": None, "target_version": 0}.items():
        with pytest.raises(ParamValidationError):
            copy.deepcopy(dag.params.get_param(name)).resolve(value)
    with pytest.raises(ParamValidationError):
        copy.deepcopy(dag.params.get_param("reason")).resolve("bad")  # too short to say why
    assert copy.deepcopy(dag.params.get_param("target_version")).resolve(None) is None
    assert copy.deepcopy(dag.params.get_param("target_version")).resolve(2) == 2


def test_rollback_task_moves_the_champion_back_and_records_who_and_why(dag, registry_root, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from imagepipe.registry import Registry

    registry = Registry(registry_root, MODEL)
    for index in range(3):
        version = registry.allocate_version(f"run-{index}")
        registry.write_document(version, "metadata", {"version": version})
        registry.promote(version, version - 1 if version > 1 else None, f"run-{index}", "passed")
    rollback = dag.get_task("rollback").python_callable
    user = SimpleNamespace(triggering_user_name="alice")
    events = OutletEventAccessors()

    with http_server() as (hook, connection):
        # The default dataset's deployment webhook hears of the change, read when the task runs.
        monkeypatch.setenv("IMAGEPIPE_NOTIFY_CHAMPION_CHANGE", "webhook:deploy_hook")
        monkeypatch.setenv("AIRFLOW_CONN_DEPLOY_HOOK", connection)
        entry = rollback(params={"target_version": None, "reason": "version 3 mislabels beaches"},
                         run_id="manual__rb1", dag_run=user, outlet_events=events)

    assert (entry["from"], entry["to"], entry["kind"], entry["user"]) == (3, 2, "rollback", "alice")
    assert registry.champion_version() == 2
    # DAGs scheduled on the champion (batch scoring) hear of the restored version.
    [champion] = dag.get_task("rollback").outlets
    assert champion.name == f"imagepipe_champion_{MODEL}"
    assert events[champion].extra | {"at": None} == {"version": 2, "from": 3, "kind": "rollback",
                                                     "run_id": "manual__rb1", "at": None, "model_name": MODEL}
    [change] = hook.payloads()
    assert change | {"at": None} == {
        "event": "champion_change", "dataset": "default", "summary": f"{MODEL}: version 2 is champion (rollback, was "
        "version 3)", "model_name": MODEL, "version": 2, "from": 3, "kind": "rollback", "run_id": "manual__rb1",
        "at": None, "user": "alice", "reason": "version 3 mislabels beaches"}
    assert not any(secret in hook.posts[0][2] for secret in CREDENTIALS)
    # A refusal fails the task at once (AirflowFailException: no retries), with the registry's line.
    with pytest.raises(AirflowFailException, match="has no version 7"):
        rollback(params={"target_version": 7, "reason": "typo in the form"}, run_id="manual__rb2", dag_run=user,
                 outlet_events=events)
    rollback(params={"target_version": 1, "reason": "back to the first"}, run_id="manual__rb3", dag_run=user,
             outlet_events=events)
    assert [(entry.from_version, entry.version) for entry in registry.history()][-2:] == [(3, 2), (2, 1)]


def _promote_args(pipeline, run_type: str, **params) -> list[str]:
    resolved = {**{name: pipeline.params.get_param(name).resolve() for name in pipeline.params}, **params}
    env = pipeline.get_template_env()
    dag_run = SimpleNamespace(run_type=run_type)
    return [env.from_string(arg).render(params=resolved, run_id="backfill__x", dag_run=dag_run)
            for arg in pipeline.get_task("promote").application_args]


@pytest.mark.parametrize(
    "run_type, params, expected",
    [
        ("scheduled", {}, ("scheduled", False, "")),
        ("backfill", {}, ("backfill", False, "")),
        ("backfill", {"promote_on_backfill": True}, ("backfill", True, "")),
        # A force reaches promote as the gate's decision (the run's gate record), never as an argument.
        ("manual", {"force_promote": True, "force_reason": "labels fixed"}, ("manual", False, "")),
    ],
)
def test_pipeline_hands_run_type_and_backfill_params_to_the_promote_job(bag, registry_root, run_type, params,
                                                                        expected):
    from spark_jobs import promote_model

    args = promote_model.parse_args(_promote_args(bag.dags["image_classifier_pipeline"], run_type, **params))

    assert (args.run_type, args.promote_on_backfill, args.force_reason) == expected
    assert args.registry_uri == registry_root


def test_pipeline_promotion_params_validate(bag):
    from airflow.sdk.exceptions import ParamValidationError

    params = bag.dags["image_classifier_pipeline"].params
    assert params.get_param("promote_on_backfill").resolve() is False
    assert params.get_param("force_promote").resolve() is False
    assert params.get_param("force_reason").resolve() is None
    with pytest.raises(ParamValidationError):
        copy.deepcopy(params.get_param("force_promote")).resolve("yes")
