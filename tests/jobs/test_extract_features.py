"""extract_features on a real lake in local Spark: the run's preprocessing decides where its features go."""

from __future__ import annotations

import pytest

from conftest import settle
from imagepipe import storage
from imagepipe.dev import sample_data
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import FeaturesRecord
from pipeline_runs import upload_with_a_small_image
from spark_jobs import extract_features, ingest_images

# Each scenario runs the job several times, each a fresh set of torch workers: make test only.
pytestmark = pytest.mark.slow
SMALL = ["--backbone", "resnet18", "--weights", "random:0", "--image-size", "32", "--batch-size", "8"]


def test_runs_differing_only_in_preprocessing_write_separate_feature_spaces(spark, s3_bucket, lake_root):
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=2, seed=1))
    settle()
    common = ["--run-id", "manual__pre", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", "2100-01-01T00:00:00+00:00"])
    lake = Lake(lake_root)

    extract_features.main([*common, *SMALL])
    default = lake.read_record("manual__pre", FeaturesRecord)
    extract_features.main([*common, *SMALL, "--preprocessing", "exif_transpose,median:3,autocontrast,pad_to_square"])
    cleaned = lake.read_record("manual__pre", FeaturesRecord)

    assert default.preprocessing == ["exif_transpose"]
    assert cleaned.preprocessing == ["exif_transpose", "median:3", "autocontrast", "pad_to_square"]
    assert default.fingerprint != cleaned.fingerprint
    for record in (default, cleaned):
        table = spark.table(lake.features(record.fingerprint).identifier)
        assert record.rows == 8
        assert {row.fingerprint for row in table.select("fingerprint").distinct().collect()} == {record.fingerprint}
        space = storage.read_json(lake.feature_space_document(record.fingerprint))
        assert space["preprocessing"] == record.preprocessing


def test_a_rerun_keeps_the_vectors_it_has_and_computes_only_images_new_to_the_window(spark, s3_bucket, lake_root):
    upload_with_a_small_image(s3_bucket, per_class=2, seed=4)
    common = ["--run-id", "manual__again", "--lake-root", lake_root]
    ingest = [*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", "2100-01-01T00:00:00+00:00",
              "--max-rejected-fraction", "0.5"]
    ingest_images.main(ingest)  # the 12-pixel image is below the default minimum side: quarantined
    extract_features.main([*common, *SMALL])
    lake = Lake(lake_root)
    first = lake.read_record("manual__again", FeaturesRecord)
    uri = lake.features(first.fingerprint).identifier
    vectors = {row.sha256: row.features for row in spark.table(uri).collect()}

    extract_features.main([*common, *SMALL])
    again = lake.read_record("manual__again", FeaturesRecord)
    assert (first.rows, first.reused) == (8, 0)
    assert (again.rows, again.reused) == (0, 8)
    assert {row.sha256: row.features for row in spark.table(uri).collect()} == vectors

    # The window is ingested again with a lower minimum: one more image in it, and only that one is computed.
    ingest_images.main([*ingest, "--min-side", "8"])
    extract_features.main([*common, *SMALL])
    third = lake.read_record("manual__again", FeaturesRecord)
    table = spark.table(uri)
    assert (third.rows, third.reused) == (1, 8)
    assert table.count() == table.select("sha256").distinct().count() == 9
