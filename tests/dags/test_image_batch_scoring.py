"""The pipeline's outputs as Airflow Assets, the champion asset's event sent only when a run changed the champion, and
the batch-scoring DAG scheduled on it, as Airflow loads them."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
MODEL = "image_classifier"


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("assets") / "lake")


@pytest.fixture(scope="module")
def bag(lake_root):
    from airflow.dag_processing.dagbag import DagBag

    # The DAG files read the lake root from the environment when they are parsed.
    saved = {name: os.environ.pop(name, None) for name in ("IMAGEPIPE_LAKE_ROOT", "IMAGEPIPE_REGISTRY_URI")}
    os.environ["IMAGEPIPE_LAKE_ROOT"] = lake_root
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        os.environ.pop("IMAGEPIPE_LAKE_ROOT")
        os.environ.update({name: value for name, value in saved.items() if value is not None})
    assert bag.import_errors == {}
    return bag


def test_outputs_are_assets_under_the_lake_and_scoring_runs_on_a_new_champion(bag, lake_root):
    pipeline, scoring = bag.dags["image_classifier_pipeline"], bag.dags["image_batch_scoring"]
    lake_uri = Path(lake_root).as_uri()
    outlets = {task.task_id: [(asset.name, asset.uri) for asset in task.outlets] for task in pipeline.tasks}

    assert outlets["ingest"] == [("imagepipe_curated_images", f"{lake_uri}/images")]
    assert outlets["extract_features"] == [("imagepipe_features", f"{lake_uri}/features")]
    champion = (f"imagepipe_champion_{MODEL}", f"{lake_uri}/registry/{MODEL}/champion.json")
    assert outlets["publish_champion"] == [champion]
    # promote succeeds also when it keeps the champion (a backfill): it must not announce a new one.
    assert outlets["promote"] == [] and outlets["train"] == [] and outlets["evaluate"] == []
    assert pipeline.get_task("publish_champion").upstream_task_ids == {"promote"}
    assert [(asset.name, asset.uri) for asset in scoring.timetable.asset_condition.objects] == [champion]
    [scored] = scoring.get_task("score").outlets
    assert scored.uri == f"{lake_uri}/predictions/{MODEL}"


def test_object_storage_locations_become_s3_asset_uris():
    from imagepipe.airflow import assets

    assert assets.champion("s3a://models/prod", MODEL).uri == f"s3://models/prod/{MODEL}/champion.json"
    assert assets.curated_images("s3://lake/root").uri == "s3://lake/root/images"


def test_the_champion_asset_is_updated_only_by_a_run_that_changed_the_champion(bag, lake_root):
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from imagepipe.lake import Lake
    from imagepipe.records import PromotionRecord
    from imagepipe.registry import Registry

    lake, registry = Lake(lake_root), Registry(Lake(lake_root).registry, MODEL)
    task = bag.dags["image_classifier_pipeline"].get_task("publish_champion")
    [champion] = task.outlets
    for run_id in ("manual__first", "backfill__second"):
        version = registry.allocate_version(run_id)
        registry.write_document(version, "metadata", {"version": version})
    registry.promote(1, None, "manual__first", "verdict passed")
    # A promote retried after its swap landed records no change; the pointer still names the run.
    lake.write_record("manual__first", PromotionRecord(1, False, previous=None))
    lake.write_record("backfill__second", PromotionRecord(2, False, skipped="backfill run"))

    events = OutletEventAccessors()
    task.python_callable(run_id="manual__first", outlet_events=events)
    assert events[champion].extra | {"at": None} == {"version": 1, "from": None, "kind": "promotion",
                                                     "run_id": "manual__first", "at": None, "model_name": MODEL}

    with pytest.raises(AirflowSkipException, match="stays version 1: backfill run"):
        task.python_callable(run_id="backfill__second", outlet_events=OutletEventAccessors())


def _rendered_args(dag, params: dict) -> list[str]:
    resolved = {**{name: dag.params.get_param(name).resolve() for name in dag.params}, **params}
    env = dag.get_template_env()
    return [env.from_string(arg).render(params=resolved, run_id="asset_triggered__x", s3_endpoint_url=lambda: "")
            for arg in dag.get_task("score").application_args]


@pytest.mark.parametrize("params", [{}, {"source_uri": "s3://inbox/new/", "window_start": "2026-11-01T00:00:00+00:00",
                                         "window_end": "2026-11-02T00:00:00+00:00", "model_name": "other_model"}],
                         ids=["defaults", "every-option"])
def test_scoring_job_accepts_what_the_form_sends(bag, params):
    from spark_jobs import score_images

    args = score_images.parse_args(_rendered_args(bag.dags["image_batch_scoring"], params))

    assert args.source_uri == params.get("source_uri", "s3://imagepipe-samples/unlabelled/")
    assert args.model_name == params.get("model_name", MODEL)
    assert (args.window_start is None) == ("window_start" not in params)
    assert (args.window_end is None) == ("window_end" not in params)


def test_scoring_form_refuses_invalid_input(bag):
    from airflow.sdk.exceptions import ParamValidationError

    params = bag.dags["image_batch_scoring"].params
    for name, value in {"source_uri": "/local/images", "window_end": "yesterday", "model_name": "../other"}.items():
        with pytest.raises(ParamValidationError):
            copy.deepcopy(params.get_param(name)).resolve(value)


def test_a_drift_alarm_updates_the_drift_asset_and_tells_the_drift_subscribers_and_a_quiet_run_does_neither(
        bag, lake_root, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from receivers import http_server

    from imagepipe.drift import DriftCheck, DriftReport
    from imagepipe.lake import Lake
    from imagepipe.records import ScoringRecord

    task = bag.dags["image_batch_scoring"].get_task("drift_alarm")
    [drift] = task.outlets
    assert (drift.name, drift.uri) == (f"imagepipe_drift_{MODEL}", f"{Path(lake_root).as_uri()}/drift/{MODEL}")
    assert task.upstream_task_ids == {"score"}
    checks = (DriftCheck("class_mix_psi", 0.61, 0.25, True), DriftCheck("top_probability_psi", 0.04, 0.25, False),
              DriftCheck("feature_psi_max", 1.9, 0.25, True))
    lake = Lake(lake_root)
    def scoring(report: DriftReport) -> ScoringRecord:
        return ScoringRecord(
            source_uri="s3://inbox/new/", window={}, model_name=MODEL, model_version=4, fingerprint="f", listed=150,
            outside_window=0, scored=150, not_scored={}, labels={"beach": 150}, predictions="predictions",
            seconds=3.0, objects_per_s=50.0, drift=report.to_json())

    lake.write_record("asset_triggered__shifted", scoring(DriftReport(4, 150, checks, (1.9, 0.2, 0.1, 0.05, 0.02))))
    lake.write_record("asset_triggered__quiet", scoring(
        DriftReport(4, 150, tuple(DriftCheck(c.name, 0.03, 0.25, False) for c in checks), (0.03,) * 5)))
    events = OutletEventAccessors()

    with http_server() as (hook, connection):
        monkeypatch.setenv("IMAGEPIPE_NOTIFY_DRIFT", "webhook:ml_hook")
        monkeypatch.setenv("AIRFLOW_CONN_ML_HOOK", connection)
        task.python_callable(run_id="asset_triggered__shifted", params={"model_name": MODEL}, outlet_events=events)
        with pytest.raises(AirflowSkipException, match="no drift alarm against version 4: class_mix_psi 0.03 <= 0.25"):
            task.python_callable(run_id="asset_triggered__quiet", params={"model_name": MODEL},
                                 outlet_events=OutletEventAccessors())

    assert events[drift].extra == {"model_name": MODEL, "version": 4, "run_id": "asset_triggered__shifted",
                                   "images": 150, "alarms": ["class_mix_psi", "feature_psi_max"]}
    [notice] = hook.payloads()  # the quiet run told nobody
    assert notice["summary"] == (f"{MODEL}: drift alarm in batch scoring (class_mix_psi, feature_psi_max) against "
                                 "version 4")
    assert notice["checks"]["feature_psi_max"] == {"value": 1.9, "threshold": 0.25, "alarm": True}
