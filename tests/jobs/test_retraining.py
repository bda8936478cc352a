"""The train task's retraining check on a real lake: a champion trained on one window, then a run that adds a few
images, judged against the run's retrain_min_new_share."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from conftest import settle
from imagepipe import params
from imagepipe.airflow.task_guards import skip_unless_retrain_due
from imagepipe.dev import sample_data
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import RetrainRecord
from imagepipe.registry import open_registry
from imagepipe.summary import run_outcome, summarize
from pipeline_runs import FEATURES, TRAIN
from spark_jobs import evaluate_model, extract_features, ingest_images, promote_model, train_classifier

pytestmark = pytest.mark.slow  # two ingests, two extractions and a training: make test only
MODEL = "image_classifier"


def ingest_and_extract(bucket: str, lake_root: str, run_id: str) -> None:
    settle()
    common = ["--run-id", run_id, "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{bucket}/set/",
                        "--window-end", datetime.now(timezone.utc).isoformat()])
    extract_features.main([*common, *FEATURES])


@pytest.fixture(scope="module")
def lake_with_new_images(spark, s3_endpoint) -> str:
    """A champion trained on 80 images (run manual__first), then run manual__second, which ingested and featurised
    8 more (10 %)."""
    bucket = "retraining-set"
    s3_client().create_bucket(Bucket=bucket)
    sample_data.upload(s3_client(), bucket, "set", sample_data.generate(per_class=20, seed=5))
    lake_root = f"s3a://{bucket}/lake"  # the production shape: the tables on object storage, read by pyiceberg too
    common = ["--run-id", "manual__first", "--lake-root", lake_root]
    ingest_and_extract(bucket, lake_root, "manual__first")
    train_classifier.main([*common, *TRAIN])
    evaluate_model.main([*common, "--min-test-images", "1"])
    promote_model.main([*common, "--force-reason", "the first champion of the test"])
    more = (sample_data.SampleImage(image.label, f"more_{image.name}", image.content)  # the first images' keys stay
            for image in sample_data.generate(per_class=2, seed=6))
    sample_data.upload(s3_client(), bucket, "set", more)
    ingest_and_extract(bucket, lake_root, "manual__second")
    return lake_root


def context(run_type: str = "manual", **values) -> dict:
    """The train task's context: the form's defaults with the training settings the champion was trained with."""
    form = {name: param.default for name, param in params.form_fields(*params.PIPELINE_FORM).items()}
    return {"params": {**form, "hyperparameters": {"max_iter": 20}, **values}, "run_id": "manual__second",
            "dag_run": SimpleNamespace(run_type=run_type)}


def test_a_run_with_fewer_new_images_than_the_share_keeps_the_champion(lake_with_new_images):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException) as skipped:
        skip_unless_retrain_due(lake_with_new_images, MODEL, None, context(retrain_min_new_share=0.5))
    reason = str(skipped.value)
    assert reason.startswith("8 new images since champion version 1's training, 10.0% of the 80 it was trained on, "
                             "below retrain_min_new_share=0.5: training, evaluation and promotion are skipped"), reason
    # The run's summary and its run tab say so too (imagepipe.summary's outcome is what the tab shows).
    lake = lake_with_new_images
    outcome = run_outcome(Lake(lake), "manual__second", open_registry(MODEL, None, lake))
    assert outcome["retrain"] == {"format": 1, "due": False, "reason": reason} and outcome["candidate"] is None
    assert f"training:         skipped: {reason}" in summarize(outcome)


@pytest.mark.parametrize("values", [
    {"retrain_min_new_share": 0.1},  # 8 of 80: the share is reached
    {"retrain_min_new_share": 0.0},  # the default: every run trains
    {"retrain_min_new_share": 0.5, "classifier": "linear_svc"},  # settings the champion was not trained with
    {"retrain_min_new_share": 0.5, "require_new_images": False},  # retraining on purpose
], ids=["share-reached", "default", "other-settings", "retrain-on-purpose"])
def test_a_run_trains_when_its_new_images_reach_the_share_or_the_champion_does_not_apply(lake_with_new_images, values):
    skip_unless_retrain_due(lake_with_new_images, MODEL, None, context(**values))

    record = Lake(lake_with_new_images).find_record("manual__second", RetrainRecord)
    if values["retrain_min_new_share"] and values.get("require_new_images", True):  # the check ran, and says why
        assert record.due is True and record.reason


def test_a_run_triggered_by_a_drift_alarm_always_trains(lake_with_new_images):
    skip_unless_retrain_due(lake_with_new_images, MODEL, None,
                            context(run_type="asset_triggered", retrain_min_new_share=0.5))
