"""Each declared dataset becomes its own pipeline, batch scoring and rollback DAGs, as Airflow loads them from the
project's DAG files: own schedule, lake folder, registry model, assets and form defaults, nothing shared with the
default dataset's DAGs but the registry's root."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DATASETS = """
    [datasets.holiday]
    source_uri = "s3://my-photos/holiday/"
    schedule = "0 3 * * *"
    scoring_uri = "s3://my-photos/inbox/"
    [datasets.holiday.defaults]
    image_size = 64
    classifier = "mlp"

    [datasets.scans]
    source_uri = "s3://scans/labelled/"
    schedule = "none"
    retrain_on_drift = true
"""


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path_factory.mktemp("datasets") / "datasets.toml"
    path.write_text(textwrap.dedent(DATASETS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEPIPE_DATASETS_FILE", str(path))
        patch.setenv("IMAGEPIPE_LAKE_ROOT", "/data/lake")
        patch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
        bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag


def lake_root_of(task) -> str:
    return task.application_args[task.application_args.index("--lake-root") + 1]


def test_every_dataset_gets_its_own_four_dags(bag):
    assert sorted(bag.dag_ids) == sorted(f"{kind}{suffix}" for suffix in ("", "__holiday", "__scans") for kind in (
        "image_classifier_pipeline", "image_batch_scoring", "image_classifier_rollback", "image_forget"))


def test_a_datasets_pipeline_has_its_schedule_lake_folder_model_assets_and_defaults(bag):
    default, holiday = bag.dags["image_classifier_pipeline"], bag.dags["image_classifier_pipeline__holiday"]

    assert holiday.timetable.expression == "0 3 * * *" and default.timetable.expression == "0 0 * * *"
    assert type(holiday.timetable).__name__ == "CronDataIntervalTimetable"  # no retraining on drift unless declared
    assert lake_root_of(default.get_task("ingest")) == "/data/lake"
    for task_id in ("ingest", "finetune_backbone", "extract_features", "train", "evaluate", "promote"):
        assert lake_root_of(holiday.get_task(task_id)) == "/data/lake/datasets/holiday"
    train = holiday.get_task("train").application_args
    assert train[train.index("--model-name") + 1] == "holiday"
    assert train[train.index("--registry-uri") + 1] == "/data/lake/registry"  # one registry, a model per dataset
    outlets = {outlet.name for task in holiday.tasks for outlet in task.outlets}
    assert outlets == {"imagepipe_curated_images__holiday", "imagepipe_features__holiday", "imagepipe_champion_holiday"}
    assert not outlets & {outlet.name for task in default.tasks for outlet in task.outlets}

    form = {name: holiday.params.get_param(name).value for name in ("source_uri", "image_size", "classifier")}
    assert form == {"source_uri": "s3://my-photos/holiday/", "image_size": 64, "classifier": "mlp"}
    # The dataset's defaults change nothing else: its form refuses what the default dataset's refuses.
    assert holiday.params.get_param("max_drop").schema == default.params.get_param("max_drop").schema


def test_a_dataset_declared_without_schedule_or_scoring_prefix_runs_by_hand_and_on_its_drift_alarms(bag):
    from airflow.sdk.definitions.timetables.simple import NullTimetable

    # Its pipeline's only schedule is its batch scoring's drift alarm asset.
    pipeline = bag.dags["image_classifier_pipeline__scans"]
    [alarm] = pipeline.timetable.asset_condition.objects
    assert alarm.name == "imagepipe_drift_scans"
    assert [outlet.name for outlet in bag.dags["image_batch_scoring__scans"].get_task("drift_alarm").outlets] == [
        "imagepipe_drift_scans"]
    scoring = bag.dags["image_batch_scoring__scans"]
    assert isinstance(scoring.timetable, NullTimetable)
    assert "default" not in scoring.params.get_param("source_uri").dump()  # the form asks for the prefix


def test_each_batch_scoring_follows_its_own_datasets_champion_and_writes_to_its_lake_folder(bag):
    for suffix, model in (("", "image_classifier"), ("__holiday", "holiday")):
        scoring = bag.dags[f"image_batch_scoring{suffix}"]
        assert [asset.name for asset in scoring.timetable.asset_condition.objects] == [f"imagepipe_champion_{model}"]
        assert scoring.params.get_param("model_name").value == model
        rollback = bag.dags[f"image_classifier_rollback{suffix}"]
        assert [outlet.name for outlet in rollback.get_task("rollback").outlets] == [f"imagepipe_champion_{model}"]
    score = bag.dags["image_batch_scoring__holiday"].get_task("score")
    assert lake_root_of(score) == "/data/lake/datasets/holiday"
    assert bag.dags["image_batch_scoring__holiday"].params.get_param("source_uri").value == "s3://my-photos/inbox/"


def test_a_scheduled_dataset_retraining_on_drift_runs_on_its_cron_and_on_each_alarm(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "datasets.toml"
    path.write_text('[datasets.holiday]\nsource_uri = "s3://my-photos/holiday/"\nschedule = "0 3 * * *"\n'
                    'retrain_on_drift = true\n')
    monkeypatch.setenv("IMAGEPIPE_DATASETS_FILE", str(path))
    monkeypatch.setenv("IMAGEPIPE_RETRAIN_ON_DRIFT", "true")  # the default dataset's
    bag = DagBag(dag_folder=str(DAGS / "image_classifier_pipeline.py"))

    for dag_id, model in (("image_classifier_pipeline", "image_classifier"),
                          ("image_classifier_pipeline__holiday", "holiday")):
        timetable = bag.dags[dag_id].timetable
        assert type(timetable).__name__ == "AssetOrTimeSchedule", dag_id
        assert [asset.name for asset in timetable.asset_condition.objects] == [f"imagepipe_drift_{model}"]
    assert bag.dags["image_classifier_pipeline__holiday"].timetable.timetable.expression == "0 3 * * *"
