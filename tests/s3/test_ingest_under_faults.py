"""Ingest through an endpoint that throttles and drops connections: botocore's retries still take every good image
exactly once."""

from __future__ import annotations

import pytest
from faulty_proxy import FaultyProxy

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import IngestRecord
from spark_jobs import ingest_images

# Botocore backs off on every fault it meets: make test only.
pytestmark = pytest.mark.slow


def test_every_image_is_ingested_once_despite_503s_and_dropped_connections(spark, s3_bucket, s3_endpoint, lake_root):
    images = list(sample_data.generate(per_class=10, seed=9, classes=("beach", "snowfield")))
    sample_data.upload(s3_client(), s3_bucket, "set", iter(images))
    settle()

    with FaultyProxy(s3_endpoint, fail_every=4) as proxy:
        ingest_images.main(
            ["--source-uri", f"s3://{s3_bucket}/set/", "--run-id", "manual__faults", "--lake-root", lake_root,
             "--window-end", "2100-01-01T00:00:00Z", "--endpoint-url", proxy.url, "--fetch-threads", "4"]
        )

    assert proxy.injected["slow_down"] >= 2 and proxy.injected["dropped"] >= 2
    rows = spark.table(Lake(lake_root).images.identifier).select("key", "sha256").collect()
    assert sorted(row["key"] for row in rows) == sorted(f"set/{image.label}/{image.name}" for image in images)
    report = Lake(lake_root).read_record("manual__faults", IngestRecord)
    assert report.ingested == 20 and report.rejected == {}
