"""The README's commands on the embedded stack, run as a user runs them: make demo (twice), then a dataset of one's
own images (make dataset, make run DATASET=), and make run with fine-tuning on a bucket filled by hand. Each run goes
through Airflow (`airflow dags test`), spark-submit and the real S3 endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagepipe import sample_data

pytestmark = pytest.mark.e2e


def _registry(env, model: str = "image_classifier") -> Path:
    return Path(env["IMAGEPIPE_DATA_DIR"]) / "lake" / "registry" / model


def _lake_images(env, dataset: str | None = None) -> list[dict]:
    import pyarrow.dataset as ds

    lake = Path(env["IMAGEPIPE_DATA_DIR"]) / "lake"
    table = ds.dataset((lake / "datasets" / dataset if dataset else lake) / "images", format="parquet",
                       partitioning="hive")
    return table.to_table(columns=["sha256", "label", "key"]).to_pylist()


def test_make_demo_twice_then_a_dataset_of_ones_own_images_gets_a_model_of_its_own(user_env, make):
    first = make(user_env, "demo")
    assert "images ingested:  400 new" in first.stdout
    assert "gate verdict:     PASSED" in first.stdout
    assert "champion:         version 1" in first.stdout
    metrics = json.loads((_registry(user_env) / "versions" / "1" / "metrics.json").read_text())
    # Far above what a pipeline with detached labels or misaligned features reaches (0.25 on four classes).
    assert metrics["candidate"]["accuracy"] >= 0.9

    second = make(user_env, "demo")
    assert "images ingested:  0 new" in second.stdout
    assert "skipped:          no new images in the window" in second.stdout
    assert "champion:         version 1" in second.stdout
    images = _lake_images(user_env)
    assert len(images) == 400
    assert len({row["sha256"] for row in images}) == 400
    assert sorted(path.name for path in (_registry(user_env) / "versions").iterdir()) == ["1"]
    assert json.loads((_registry(user_env) / "versions" / "1" / "verdict.json").read_text())["passed"]
    # The embedded S3 that demo started is stopped again.
    assert not (Path(user_env["IMAGEPIPE_DATA_DIR"]) / "s3" / "moto.pid").exists()

    # The README's own-images path after the demo: a dataset of its own, trained on its images only.
    own = make_run_on_holiday_photos(user_env, make, dataset="holiday")
    assert "images ingested:  180 new" in own.stdout
    assert "champion:         version 1" in own.stdout
    metadata = json.loads((_registry(user_env, "holiday") / "versions" / "1" / "metadata.json").read_text())
    assert metadata["labels"] == ["beach", "forest", "night_sky"]
    assert {row["key"].split("/")[0] for row in _lake_images(user_env, "holiday")} == {"holiday"}
    # The demo's dataset is as the demo left it.
    assert len(_lake_images(user_env)) == 400
    assert sorted(path.name for path in (_registry(user_env) / "versions").iterdir()) == ["1"]


def make_run_on_holiday_photos(user_env, make, conf: dict | None = None, dataset: str | None = None):
    """make run on a bucket a user filled by hand in the embedded S3 (started and stopped here): 180 images of three
    classes under s3://my-photos/holiday/<label>/, 14 of which land in the hash-derived test split, above the gate's
    default minimum of 10. With `dataset`, the prefix is declared as that dataset (make dataset) and its DAG runs;
    else the default dataset's DAG runs with the prefix as the run's source_uri."""
    make(user_env, "s3-start")
    try:
        env_lines = make(user_env, "-s", "s3-env").stdout.splitlines()
        s3_env = dict(line.removeprefix("export ").split("=", 1) for line in env_lines)
        import boto3

        client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name=s3_env["AWS_DEFAULT_REGION"],
                              aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket="my-photos")
        for image in sample_data.generate(per_class=60, seed=21, classes=("forest", "beach", "night_sky")):
            client.put_object(Bucket="my-photos", Key=f"holiday/{image.label}/{image.name}", Body=image.content)
        if dataset is None:
            return make(user_env, "run", f"CONF={json.dumps({'source_uri': 's3://my-photos/holiday/', **conf})}")
        make(user_env, "dataset", f"NAME={dataset}", "SOURCE=s3://my-photos/holiday/")
        return make(user_env, "run", f"DATASET={dataset}")
    finally:
        make(user_env, "s3-stop")


def test_make_run_with_finetune_on_promotes_a_model_on_the_fine_tuned_backbones_features(user_env, make):
    # One epoch proves the path, not the accuracy fine-tuning reaches.
    result = make_run_on_holiday_photos(
        user_env, make, {"finetune": True, "finetune_epochs": 1, "image_size": 64, "min_accuracy": 0.5})
    assert "champion:         version 1" in result.stdout
    lake = Path(user_env["IMAGEPIPE_DATA_DIR"]) / "lake"
    [record] = [json.loads(path.read_text()) for path in (lake / "runs").glob("*/finetune.json")]
    assert Path(record["weights"]).is_relative_to(lake / "finetuned") and record["epochs_run"] == 1
    metadata = json.loads((_registry(user_env) / "versions" / "1" / "metadata.json").read_text())
    space = json.loads((lake / "features" / metadata["fingerprint"] / "_feature_space.json").read_text())
    assert space["weights"] == record["weights"] and space["image_size"] == 64
    assert f"fine-tuned:       {record['weights']} (validation accuracy" in result.stdout
