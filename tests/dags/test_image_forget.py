"""The forget DAG as Airflow loads it: manual only, one Spark task handing the form's image and reason to
forget_image for the dataset's own lake and model, with the triggering user, after the dataset's writers are idle."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag


def test_forget_is_manual_only_documented_and_retried_with_a_timeout(bag):
    dag = bag.dags["image_forget"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert "Image forget" in dag.doc_md and "make forget" in dag.doc_md
    [task] = dag.tasks
    assert task.task_id == "forget" and task.job == "forget_image"
    assert task.retries >= 1 and task.retry_exponential_backoff > 1 and task.execution_timeout is not None


def test_forget_hands_the_lake_the_model_and_the_triggering_user_to_its_job(bag):
    from imagepipe import lake, settings

    args = bag.dags["image_forget"].get_task("forget").application_args
    assert args[args.index("--lake-root") + 1] == settings.lake_root()
    assert args[args.index("--model-name") + 1] == "image_classifier"
    assert args[args.index("--registry-uri") + 1] == lake.registry_uri()
    assert "dag_run.triggering_user_name" in args[args.index("--requested-by") + 1]


class RunCounts:
    """What a task instance answers about other DAGs' runs (the Task SDK's get_dr_count), from a fixed table."""

    def __init__(self, active: dict[str, int]):
        self.active, self.asked = active, []

    def get_dr_count(self, dag_id, states=None, **_):
        self.asked.append((dag_id, tuple(states)))
        return self.active.get(dag_id, 0)


def test_forget_waits_while_the_datasets_pipeline_or_batch_scoring_runs(bag):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    # What the task runner calls before execute (the operator's pre_execute hook), with the context it is given.
    guard = bag.dags["image_forget"].get_task("forget")._pre_execute_hook
    idle = RunCounts({})
    guard({"ti": idle})
    assert {dag_id for dag_id, _ in idle.asked} == {"image_classifier_pipeline", "image_batch_scoring"}
    assert all(set(states) == {"queued", "running"} for _, states in idle.asked)

    with pytest.raises(AirflowException, match="image_classifier_pipeline has a run in progress") as refused:
        guard({"ti": RunCounts({"image_classifier_pipeline": 1})})
    assert not isinstance(refused.value, AirflowFailException)  # a wait: retried with backoff, not a failure


def test_the_form_needs_a_reason_and_refuses_a_malformed_sha256(bag):
    from airflow.sdk.exceptions import ParamValidationError

    dag = bag.dags["image_forget"]
    with pytest.raises(ParamValidationError):
        copy.deepcopy(dag.params.get_param("forget_reason")).resolve(None)
    with pytest.raises(ParamValidationError):
        copy.deepcopy(dag.params.get_param("image_sha256")).resolve("not-a-digest")
    assert copy.deepcopy(dag.params.get_param("image_sha256")).resolve("a" * 64) == "a" * 64
