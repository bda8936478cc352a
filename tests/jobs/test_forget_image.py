"""forget_image on a lake on object storage (s3a:// on a real S3 endpoint): a champion trained and scoring by the
pipeline's own jobs, then one image forgotten by its key; every object under the lake is scanned for its bytes."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import FeaturesRecord, ForgetRecord
from pipeline_runs import FAR_FUTURE, TRAIN
from spark_jobs import (
    evaluate_model,
    extract_features,
    forget_image,
    ingest_images,
    promote_model,
    score_images,
    train_classifier,
)

pytestmark = pytest.mark.slow  # a whole pipeline, scoring included, before the forgetting
BUCKET = "forget-lake"
FEATURES = ["--backbone", "resnet18", "--weights", "random:0", "--image-size", "64", "--batch-size", "16"]
CLASSES = ("beach", "forest")


def _objects_holding(content: bytes) -> list[str]:
    """Keys of the objects under the lake whose bytes hold `content`: as they are, or in a value of a Parquet
    file's columns (a data file may store a value compressed)."""
    client = s3_client()
    holding = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/"):
        for item in page.get("Contents", []):
            data = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            found = content in data
            if not found and item["Key"].endswith(".parquet"):
                values = pq.read_table(io.BytesIO(data)).to_pylist()
                found = any(value == content for row in values for value in row.values())
            if found:
                holding.append(item["Key"])
    return holding


@pytest.fixture(scope="module")
def scored_lake(spark, s3_endpoint) -> tuple[str, sample_data.SampleImage]:
    """(lake root, the image to forget): 24 images ingested, a champion trained on them, and the same image also
    under inbox/, scored by that champion."""
    client = s3_client()
    client.create_bucket(Bucket=BUCKET)
    images = list(sample_data.generate(per_class=12, seed=51, classes=CLASSES))
    sample_data.upload(client, BUCKET, "set", images)
    chosen = images[0]
    client.put_object(Bucket=BUCKET, Key="inbox/chosen.jpg", Body=chosen.content)
    settle()
    lake_root = f"s3a://{BUCKET}/lake"
    common = ["--run-id", "manual__train", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{BUCKET}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*common, *FEATURES])
    train_classifier.main([*common, *TRAIN, "--min-examples-per-class", "1"])
    evaluate_model.main([*common, "--min-test-images", "1", "--min-accuracy", "none"])
    promote_model.main(common)
    score_images.main(["--run-id", "manual__score", "--lake-root", lake_root, "--source-uri",
                       f"s3://{BUCKET}/inbox/"])
    return lake_root, chosen


def test_forgetting_an_image_removes_its_rows_everywhere_and_its_bytes_from_the_lakes_storage(spark, scored_lake):
    lake_root, chosen = scored_lake
    lake = Lake(lake_root)
    key = f"set/{chosen.label}/{chosen.name}"
    [sha256] = [row["sha256"] for row in spark.table(lake.images.identifier).filter(f"key = '{key}'").collect()]
    fingerprint = lake.read_record("manual__train", FeaturesRecord).fingerprint
    tables = {"images": lake.images, "features": lake.features(fingerprint),
              "predictions": lake.predictions("image_classifier")}
    before = {name: spark.table(table.identifier).count() for name, table in tables.items()}
    assert _objects_holding(chosen.content), "the scan finds the image's bytes in the lake before it is forgotten"

    forget_image.main(["--run-id", "manual__forget", "--lake-root", lake_root, "--image-key", key,
                       "--forget-reason", "the person in it asked", "--requested-by", "privacy-desk"])

    after = {name: spark.table(table.identifier) for name, table in tables.items()}
    for name, table in after.items():
        assert table.filter(f"sha256 = '{sha256}'").count() == 0, name
    # Its own row in each table, nothing else: the scored copy under inbox/ was the same bytes.
    assert {name: before[name] - table.count() for name, table in after.items()} == {
        "images": 1, "features": 1, "predictions": 1}
    assert _objects_holding(chosen.content) == []

    record = lake.read_record("manual__forget", ForgetRecord)
    assert (record.key, record.sha256, record.requested_by) == (key, [sha256], "privacy-desk")
    assert record.reason == "the person in it asked"
    assert [version["version"] for version in record.model_versions] == [1]
    [entry] = spark.table(lake.forgotten.identifier).collect()
    assert (entry["key"], entry["sha256"], entry["run_id"]) == (key, [sha256], "manual__forget")
    assert json.loads(entry["rows_removed"]) == record.rows_removed

    # A retry of the same run finishes what is left (nothing) and keeps the record its first attempt wrote.
    forget_image.main(["--run-id", "manual__forget", "--lake-root", lake_root, "--image-key", key,
                       "--forget-reason", "the person in it asked"])
    assert lake.read_record("manual__forget", ForgetRecord) == record
    with pytest.raises(InputError, match=f"no table of the lake {lake_root} holds an image with key {key}"):
        forget_image.main(["--run-id", "manual__again", "--lake-root", lake_root, "--image-key", key,
                           "--forget-reason", "asked twice"])


def test_the_image_is_named_by_key_or_by_sha256_not_both(scored_lake):
    lake_root, _ = scored_lake
    with pytest.raises(SystemExit):
        forget_image.main(["--run-id", "manual__x", "--lake-root", lake_root, "--image-key", "a.jpg",
                           "--image-sha256", "0" * 64, "--forget-reason", "a reason"])
