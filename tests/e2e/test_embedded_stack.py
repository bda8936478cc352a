"""The README's commands on the embedded stack, run as a user runs them: make demo (twice), and make run on a bucket
filled by hand. Each run goes through Airflow (`airflow dags test`), spark-submit and the real S3 endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagepipe import sample_data

pytestmark = pytest.mark.e2e


def _registry(env) -> Path:
    return Path(env["IMAGEPIPE_DATA_DIR"]) / "lake" / "registry" / "image_classifier"


def _lake_images(env) -> list[dict]:
    import pyarrow.dataset as ds

    table = ds.dataset(Path(env["IMAGEPIPE_DATA_DIR"]) / "lake" / "images", format="parquet", partitioning="hive")
    return table.to_table(columns=["sha256", "label", "key"]).to_pylist()


def test_make_demo_promotes_a_champion_and_a_second_demo_keeps_one_consistent_state(user_env, make):
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


def make_run_on_holiday_photos(user_env, make, conf: dict):
    """make run with conf on a bucket a user filled by hand in the embedded S3 (started and stopped here): 180
    images of three classes under s3://my-photos/holiday/<label>/, 14 of which land in the hash-derived test split,
    above the gate's default minimum of 10."""
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
        return make(user_env, "run", f"CONF={json.dumps({'source_uri': 's3://my-photos/holiday/', **conf})}")
    finally:
        make(user_env, "s3-stop")


def test_make_run_on_a_bucket_filled_by_hand(user_env, make):
    result = make_run_on_holiday_photos(user_env, make, {})
    assert "images ingested:  180 new" in result.stdout
    assert "champion:         version 1" in result.stdout
    metadata = json.loads((_registry(user_env) / "versions" / "1" / "metadata.json").read_text())
    assert metadata["labels"] == ["beach", "forest", "night_sky"]
    assert {row["key"].split("/")[0] for row in _lake_images(user_env)} == {"holiday"}


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
