"""The lake's Iceberg tables under the jobs that write them, in local Spark against a real S3 endpoint: a reader beside
a reprocessing overwrite, two writers of one table at once, and training again on an earlier version's snapshot."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.lake import WINDOW_COLUMN, Lake
from imagepipe.object_store import s3_client
from imagepipe.records import IngestRecord
from imagepipe.registry import Registry
from imagepipe.spark import own_jvm_environment
from imagepipe.tables import current_snapshot
from pipeline_runs import FAR_FUTURE, FEATURES, SMALL_IMAGE_KEY, TRAIN, upload_with_a_small_image
from spark_jobs import extract_features, ingest_images, train_classifier

PROJECT = Path(__file__).resolve().parents[2]
# Every run below ingests the same window, so each reprocesses it.
SAME_WINDOW = ["--window-start", "2000-01-01T00:00:00+00:00", "--window-end", FAR_FUTURE]


def _ingest_job(*args: str) -> subprocess.Popen:
    """ingest_images as its task starts it: a process and a JVM of its own."""
    return subprocess.Popen([sys.executable, "-m", "spark_jobs.ingest_images", *args], cwd=PROJECT,
                            env=own_jvm_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_a_reader_beside_a_reprocessing_overwrite_sees_the_old_rows_or_the_new_never_a_mix(spark, s3_bucket,
                                                                                           lake_root):
    upload_with_a_small_image(s3_bucket, per_class=2, seed=41)
    common = ["--run-id", "manual__window", "--lake-root", lake_root, "--source-uri", f"s3://{s3_bucket}/set/",
              *SAME_WINDOW, "--max-rejected-fraction", "0.5"]
    ingest_images.main(common)
    images = Lake(lake_root).images.identifier
    old = frozenset(row["key"] for row in spark.table(images).collect())

    job = _ingest_job(*common, "--min-side", "8")  # the window again: the small image is in it this time
    seen = set()
    while job.poll() is None:
        seen.add(frozenset(row["key"] for row in spark.table(images).collect()))
    assert job.returncode == 0, job.stdout.read()[-3000:]
    new = frozenset(row["key"] for row in spark.table(images).collect())

    assert new == old | {SMALL_IMAGE_KEY}
    assert seen <= {old, new}
    # Still one commit per write: the reprocessing replaced the window's partition, it did not add to it.
    assert spark.table(images).filter(f"{WINDOW_COLUMN} IS NOT NULL").count() == len(new)


@pytest.mark.slow
def test_two_writers_of_one_window_commit_in_turn_and_the_table_holds_one_of_them_whole(spark, s3_bucket, lake_root):
    upload_with_a_small_image(s3_bucket, per_class=2, seed=41)
    common = ["--lake-root", lake_root, "--source-uri", f"s3://{s3_bucket}/set/", *SAME_WINDOW,
              "--max-rejected-fraction", "0.5"]
    # Both at once, e.g. a retry started beside a zombie attempt; one keeps the small image, the other does not.
    jobs = {"manual__a": _ingest_job("--run-id", "manual__a", *common),
            "manual__b": _ingest_job("--run-id", "manual__b", *common, "--min-side", "8")}
    outputs = {run: job.communicate(timeout=600)[0] for run, job in jobs.items()}
    failed = {run: output for run, job in jobs.items() if job.returncode != 0 for output in [outputs[run]]}

    rows = spark.table(Lake(lake_root).images.identifier).select("key", "run_id").collect()
    writers = {row["run_id"] for row in rows}
    assert len(writers) == 1, f"the window holds rows of several writers: {writers}"
    (writer,) = writers
    assert writer not in failed
    expected = 9 if writer == "manual__b" else 8
    assert len(rows) == len({row["key"] for row in rows}) == expected
    for output in failed.values():  # a writer that lost says why in one line, as every refusal does
        assert "conflict" in output.lower() or "commit" in output.lower(), output[-3000:]


@pytest.mark.slow
def test_training_as_of_a_version_reads_exactly_its_rows_after_later_ingests(spark, s3_bucket, lake_root):
    client = s3_client()
    sample_data.upload(client, s3_bucket, "set", sample_data.generate(per_class=12, seed=42,
                                                                      classes=("beach", "forest")))
    settle()
    first = ["--run-id", "manual__first", "--lake-root", lake_root]
    ingest_images.main([*first, "--source-uri", f"s3://{s3_bucket}/set/",
                        "--window-end", datetime.now(timezone.utc).isoformat()])
    extract_features.main([*first, *FEATURES])
    train_classifier.main([*first, *TRAIN, "--min-examples-per-class", "1"])

    sample_data.upload(client, s3_bucket, "set", sample_data.generate(per_class=12, seed=43,
                                                                      classes=("beach", "forest")))
    settle()
    later = ["--run-id", "manual__later", "--lake-root", lake_root]
    ingest_images.main([*later, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*later, *FEATURES])
    lake = Lake(lake_root)
    assert lake.read_record("manual__later", IngestRecord).ingested == 24
    train_classifier.main([*later, *TRAIN, "--min-examples-per-class", "1", "--train-as-of-version", "1"])

    registry = Registry(lake.registry, "image_classifier")
    version_1, version_2 = registry.metadata(1), registry.metadata(2)
    assert version_2["as_of_version"] == 1
    assert version_2["snapshots"] == version_1["snapshots"]
    assert version_2["rows"] == version_1["rows"]
    assert sum(version_2["rows"]["train"].values()) > 0
    # Without it, the same run trains on every image the lake now holds: twice as many.
    fingerprint = version_1["fingerprint"]
    features_now = spark.table(lake.features(fingerprint).identifier).count()
    assert features_now == 48 and current_snapshot(spark, lake.features(fingerprint)) != (
        version_1["snapshots"][lake.features(fingerprint).identifier])
