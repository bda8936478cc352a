"""migrate_lake on a lake in the earlier layout (plain Parquet partitions, as the jobs wrote them before the lake's
tables were Iceberg tables), in local Spark against a real S3 endpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imagepipe import storage
from imagepipe.errors import InputError
from imagepipe.lake import WINDOW_COLUMN, Lake
from imagepipe.records import FeaturesRecord
from imagepipe.tables import current_snapshot
from pipeline_runs import FAR_FUTURE, FEATURES, TRAIN, upload_with_a_small_image
from spark_jobs import extract_features, ingest_images, migrate_lake, train_classifier

pytestmark = pytest.mark.slow


def _rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.select(*sorted(frame.columns)).collect())


def _earlier_layout(spark, lake: Lake, earlier_root: Path) -> None:
    """The lake's tables written the way the jobs wrote them before: Parquet, partitioned by folder, the feature
    space's settings inside its table's folder; the run records copied as they are."""
    fingerprint = lake.read_record("manual__first", FeaturesRecord).fingerprint
    for table, folder in ((lake.images, "images"), (lake.quarantine, "quarantine"),
                          (lake.features(fingerprint), f"features/{fingerprint}")):
        spark.table(table.identifier).write.partitionBy(WINDOW_COLUMN).parquet(str(earlier_root / folder))
    shutil.copytree(Path(lake.root) / "runs", earlier_root / "runs")
    shutil.copy(lake.feature_space_document(fingerprint), earlier_root / "features" / fingerprint /
                migrate_lake.EARLIER_FEATURE_SPACE)


def test_an_earlier_lake_is_refused_until_migrated_then_keeps_every_row_and_trains(spark, s3_bucket, tmp_path):
    upload_with_a_small_image(s3_bucket, per_class=6, seed=61)  # the small one quarantined
    current = Lake(str(tmp_path / "current"))
    common = ["--run-id", "manual__first", "--lake-root", current.root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*common, *FEATURES])
    fingerprint = current.read_record("manual__first", FeaturesRecord).fingerprint
    earlier = Lake(str(tmp_path / "earlier"))
    _earlier_layout(spark, current, Path(earlier.root))
    train = ["--run-id", "manual__first", "--lake-root", earlier.root, *TRAIN, "--min-examples-per-class", "1"]

    with pytest.raises(InputError, match="holds Parquet partitions of the lake's earlier layout, not an Iceberg "
                                         r"table: migrate the lake first \(python -m spark_jobs.migrate_lake"):
        train_classifier.main(train)

    migrate_lake.main(["--lake-root", earlier.root])

    for table in ("images", "quarantine"):
        assert _rows(spark.table(getattr(earlier, table).identifier)) == _rows(
            spark.table(getattr(current, table).identifier)), table
    assert _rows(spark.table(earlier.features(fingerprint).identifier)) == _rows(
        spark.table(current.features(fingerprint).identifier))
    assert storage.read_json(earlier.feature_space_document(fingerprint)) == storage.read_json(
        current.feature_space_document(fingerprint))
    snapshots = [current_snapshot(spark, table) for table in (earlier.images, earlier.features(fingerprint))]

    migrate_lake.main(["--lake-root", earlier.root])  # again: nothing changes
    assert [current_snapshot(spark, table) for table in (earlier.images, earlier.features(fingerprint))] == snapshots

    train_classifier.main(train)
    metadata = storage.read_json(storage.join(earlier.registry, "image_classifier", "versions", "1",
                                              "metadata.json"))
    assert sum(sum(per_label.values()) for per_label in metadata["rows"].values()) == 24
