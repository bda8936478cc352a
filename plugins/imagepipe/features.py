"""Feature tables: which image partitions a feature space still lacks, and the Spark wrapper of the engine."""

from __future__ import annotations

from imagepipe.featurizer import FEATURES_COLUMN, FeatureSpec, extract_batch
from imagepipe.lake import WINDOW_COLUMN

FEATURE_COLUMNS = ["sha256", "label", FEATURES_COLUMN, "fingerprint", WINDOW_COLUMN]


def windows_to_featurize(image_windows: set[str], featurized_windows: set[str], run_window: str) -> list[str]:
    """Image partitions to (re)compute: every one the feature space lacks, plus the run's own window, whose images
    a re-run of ingest may have replaced."""
    return sorted((image_windows - featurized_windows) | ({run_window} & image_windows))


def extract_features(images, spec: FeatureSpec, fingerprint: str, threads: int | None = None):
    """DataFrame of (sha256, label, features, fingerprint, window_id) for a DataFrame of images.

    The engine runs in mapInArrow: each Python worker builds the backbone once and reuses it for every batch of
    every task it serves. The batch size is spark.sql.execution.arrow.maxRecordsPerBatch, set by the job.
    """
    from pyspark.sql import functions as F

    columns = images.select("sha256", "label", "content", WINDOW_COLUMN)
    schema = f"sha256 string, label string, {WINDOW_COLUMN} string, {FEATURES_COLUMN} array<float>"
    features = columns.mapInArrow(lambda batches: (extract_batch(batch, spec, threads) for batch in batches), schema)
    return features.withColumn("fingerprint", F.lit(fingerprint)).select(*FEATURE_COLUMNS)
