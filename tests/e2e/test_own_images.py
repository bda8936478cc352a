"""The README's own-images path on the embedded stack, run as a user runs it: a bucket filled by hand in the embedded
S3, declared as a dataset (make dataset) and run with fine-tuning on (make run DATASET= CONF=). The run goes through
Airflow (`airflow dags test`), spark-submit, TorchDistributor and the real S3 endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lake_tables import table_rows
from receivers import CREDENTIALS, http_server, smtp_server

from imagepipe.dev import sample_data

pytestmark = pytest.mark.e2e

DATASET = "holiday"
CLASSES = ("forest", "beach", "night_sky")
# One epoch at 64 pixels proves the path, not the accuracy fine-tuning reaches. The gate asks for more test images
# than the 14 the set has, so it fails, and the run forces the promotion past it with a reason: the failed gate's
# e-mail and the forced champion change's webhook both go out.
FORCE_REASON = "first model of the holiday photos: 14 test images are all there are"
FINETUNE = {"finetune": True, "finetune_epochs": 1, "image_size": 64, "min_accuracy": 0.5, "min_test_images": 20,
            "force_promote": True, "force_reason": FORCE_REASON}
NOTIFY = """
[datasets.holiday.notify]
gate_failed = ["email:ml-team@example.com"]
champion_change = ["webhook:deploy_hook"]
"""


def test_a_dataset_of_ones_own_images_fine_tuned_gets_a_model_of_its_own_on_the_fine_tuned_features(user_env, make):
    with smtp_server() as (mailbox, smtp), http_server() as (hook, webhook):
        user_env.update({"AIRFLOW_CONN_SMTP_DEFAULT": smtp, "AIRFLOW_CONN_DEPLOY_HOOK": webhook})
        result = make_run_on_holiday_photos(user_env, make)

    assert "images ingested:  180 new" in result.stdout
    assert "gate verdict:     FAILED" in result.stdout
    assert "champion:         version 1" in result.stdout
    # The failed gate reached the dataset's e-mail subscriber with the check that failed; the forced promotion
    # reached its deployment webhook as JSON; neither carries a credential.
    [(to, subject, body)] = mailbox.texts()
    assert to == "ml-team@example.com"
    assert subject == (f"[imagepipe] {DATASET}: version 1 failed its gate (min_test_images); promotion forced: "
                       f"{FORCE_REASON}")
    assert "FAIL min_test_images: rows 14 &lt; 20 (enough held-out images to judge)" in body, body
    [change] = hook.payloads()
    assert {key: change[key] for key in ("event", "dataset", "model_name", "version", "from", "kind", "reason")} == {
        "event": "champion_change", "dataset": DATASET, "model_name": DATASET, "version": 1, "from": None,
        "kind": "forced", "reason": FORCE_REASON}
    assert not any(secret in text for secret in CREDENTIALS for text in (body, hook.posts[0][2], result.stdout))
    lake = Path(user_env["IMAGEPIPE_DATA_DIR"]) / "lake"
    own_lake = lake / "datasets" / DATASET
    metadata = json.loads((lake / "registry" / DATASET / "versions" / "1" / "metadata.json").read_text())
    assert metadata["labels"] == sorted(CLASSES)
    assert {row["key"].split("/")[0] for row in lake_images(user_env, own_lake)} == {DATASET}

    [record] = [json.loads(path.read_text()) for path in (own_lake / "runs").glob("*/finetune.json")]
    assert Path(record["weights"]).is_relative_to(own_lake / "finetuned") and record["epochs_run"] == 1
    space = json.loads((own_lake / "feature_spaces" / f"{metadata['fingerprint']}.json").read_text())
    assert space["weights"] == record["weights"] and space["image_size"] == 64
    assert f"fine-tuned:       {record['weights']} (validation accuracy" in result.stdout
    # The default dataset got nothing of it: no image, no model.
    assert not (lake / "images").exists()
    assert not (lake / "registry" / "image_classifier").exists()


def make_run_on_holiday_photos(user_env, make):
    """make run on a bucket a user filled by hand in the embedded S3 (started and stopped here): 180 images of three
    classes under s3://my-photos/holiday/<label>/, 14 of which land in the hash-derived test split, above the gate's
    default minimum of 10; the prefix declared as a dataset (make dataset), its DAG run with fine-tuning on."""
    make(user_env, "s3-start")
    try:
        env_lines = make(user_env, "-s", "s3-env").stdout.splitlines()
        s3_env = dict(line.removeprefix("export ").split("=", 1) for line in env_lines)
        import boto3

        client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name=s3_env["AWS_DEFAULT_REGION"],
                              aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket="my-photos")
        for image in sample_data.generate(per_class=60, seed=21, classes=CLASSES):
            client.put_object(Bucket="my-photos", Key=f"holiday/{image.label}/{image.name}", Body=image.content)
        make(user_env, "dataset", f"NAME={DATASET}", "SOURCE=s3://my-photos/holiday/")
        with Path(user_env["IMAGEPIPE_DATASETS_FILE"]).open("a") as datasets_file:
            datasets_file.write(NOTIFY)
        return make(user_env, "run", f"DATASET={DATASET}", f"CONF={json.dumps(FINETUNE)}")
    finally:
        make(user_env, "s3-stop")


def lake_images(env: dict[str, str], lake: Path) -> list[dict]:
    return table_rows(env, lake, "images", ("key",))
