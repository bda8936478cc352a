"""ingest_images against a real S3 endpoint over HTTP and local Spark."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from imagepipe import sample_data
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from spark_jobs import ingest_images

FAR_FUTURE = "2100-01-01T00:00:00+00:00"


def _jpeg(colour, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def messy_bucket(s3_bucket):
    """Eight good images in two classes plus every kind of trouble a real bucket has."""
    client = s3_client()
    images = list(sample_data.generate(per_class=4, seed=7, classes=("beach", "forest")))
    sample_data.upload(client, s3_bucket, "raw", iter(images))
    good = images[0].content
    extra = {
        "raw/beach/copy_of_first.jpg": good,  # same bytes, same label: kept once
        "raw/beach/empty.jpg": b"",
        "raw/forest/notes.jpg": b"these are not pixels",
        "raw/forest/half.jpg": _jpeg((10, 200, 30))[:300],
        "raw/forest/tiny.png": _png((5, 5)),
        "raw/beach/conflict.jpg": _jpeg((1, 2, 3)),
        "raw/forest/conflict.jpg": _jpeg((1, 2, 3)),  # same bytes, two labels: both quarantined
        "raw/unlabelled.jpg": _jpeg((90, 90, 90)),
    }
    for key, body in extra.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    return s3_bucket


def _png(size) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _ingest(bucket, lake_root, run_id, *extra):
    ingest_images.main(
        ["--source-uri", f"s3://{bucket}/raw/", "--run-id", run_id, "--lake-root", lake_root,
         "--window-end", FAR_FUTURE, "--fetch-threads", "4", *extra]
    )
    return Lake(lake_root).read_run(run_id, "ingest")


def test_ingest_keeps_good_images_once_and_quarantines_the_rest_with_reasons(spark, messy_bucket, lake_root):
    report = _ingest(messy_bucket, lake_root, "manual__one")

    images = spark.read.parquet(Lake(lake_root).images)
    assert images.count() == 8
    assert {row["label"]: row["count"] for row in images.groupBy("label").count().collect()} == {"beach": 4, "forest": 4}
    assert images.select("sha256").distinct().count() == 8
    quarantine = {row["key"]: row["reason"] for row in spark.read.parquet(Lake(lake_root).quarantine).collect()}
    assert set(quarantine) == {
        "raw/beach/empty.jpg", "raw/forest/notes.jpg", "raw/forest/half.jpg", "raw/forest/tiny.png",
        "raw/beach/conflict.jpg", "raw/forest/conflict.jpg",
    }
    assert quarantine["raw/beach/empty.jpg"].startswith("empty")
    assert quarantine["raw/forest/notes.jpg"].startswith("not an image")
    assert quarantine["raw/forest/half.jpg"].startswith(("truncated", "corrupt"))
    assert quarantine["raw/forest/tiny.png"].startswith("too small")
    assert quarantine["raw/beach/conflict.jpg"] == "conflicting labels: same content labelled beach, forest"
    assert report["ingested"] == 8
    assert report["unlabeled"] == 1
    assert report["duplicates"] == 1
    assert sum(report["rejected"].values()) == 6


def test_rerunning_the_same_run_gives_the_same_lake(spark, messy_bucket, lake_root):
    _ingest(messy_bucket, lake_root, "manual__one")
    before = sorted(row["key"] for row in spark.read.parquet(Lake(lake_root).images).select("key").collect())
    _ingest(messy_bucket, lake_root, "manual__one")
    after = sorted(row["key"] for row in spark.read.parquet(Lake(lake_root).images).select("key").collect())
    assert after == before
    assert spark.read.parquet(Lake(lake_root).quarantine).count() == 6


def test_a_later_watermark_run_takes_only_new_objects(spark, messy_bucket, lake_root):
    first_end = datetime.now(timezone.utc) + timedelta(seconds=1)
    ingest_images.main(
        ["--source-uri", f"s3://{messy_bucket}/raw/", "--run-id", "manual__one", "--lake-root", lake_root,
         "--window-end", first_end.isoformat()]
    )
    s3_client().put_object(Bucket=messy_bucket, Key="raw/forest/new.jpg", Body=_jpeg((0, 120, 0)))
    report = _ingest(messy_bucket, lake_root, "manual__two")

    window = Lake(lake_root).read_run("manual__two", "window")
    assert window["start"] == first_end.isoformat()
    assert report["ingested"] == 1
    assert spark.read.parquet(Lake(lake_root).images).count() == 9


def test_objects_outside_an_explicit_window_are_left_for_their_own_run(spark, messy_bucket, lake_root):
    report = _ingest(messy_bucket, lake_root, "manual__future", "--window-start", "2099-01-01T00:00:00Z")
    assert report["ingested"] == 0
    assert report["outside_window"] == report["listed"]


def test_identical_content_already_in_the_lake_is_not_taken_again(spark, messy_bucket, lake_root):
    _ingest(messy_bucket, lake_root, "manual__one")
    first = json.dumps(sorted(r["sha256"] for r in spark.read.parquet(Lake(lake_root).images).collect()))
    s3_client().copy_object(
        Bucket=messy_bucket, Key="raw/beach/another_copy.jpg", CopySource={"Bucket": messy_bucket, "Key": "raw/beach/copy_of_first.jpg"}
    )
    report = _ingest(messy_bucket, lake_root, "manual__two", "--window-start", "2000-01-01T00:00:00Z")
    assert report["ingested"] == 0
    assert json.dumps(sorted(r["sha256"] for r in spark.read.parquet(Lake(lake_root).images).collect())) == first
