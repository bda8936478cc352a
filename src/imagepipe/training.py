"""Training data and fitting: deterministic splits and folds, class checks and weights, and the fitted MLlib
PipelineModel that takes feature arrays and returns label strings."""

from __future__ import annotations

from dataclasses import dataclass

from imagepipe.classifiers import FEATURE_VECTOR, FOLD_COLUMN, LABEL_INDEX, WEIGHT_COLUMN, ModelSpec, build_pipeline
from imagepipe.errors import InputError
from imagepipe.featurizer import FEATURES_COLUMN
from imagepipe.lake import WINDOW_COLUMN, Lake, Table
from imagepipe.records import FeaturesRecord
from imagepipe.windows import EPOCH, Window, parse_timestamp

SPLITS = (("train", 80), ("validation", 90), ("test", 100))  # cumulative percent of the sha256 hash space


@dataclass(frozen=True)
class TrainingRead:
    """What one training reads: a feature space's rows up to a window end (the last training_days days of them),
    each table at one snapshot, which the version's metadata records as its lineage."""

    fingerprint: str
    preprocessing: list | None
    window_end: str  # ISO-8601
    training_days: int | None
    snapshots: dict[Table, int | None]

    @property
    def window(self) -> Window:
        return Window(EPOCH, parse_timestamp(self.window_end))

    def recorded(self) -> dict[str, int | None]:
        return {table.identifier: snapshot for table, snapshot in self.snapshots.items()}


def read_now(spark, lake: Lake, window: Window, feature_run: FeaturesRecord, training_days: int | None) -> TrainingRead:
    """The run's own training read: its feature space up to its window end, every table at its current snapshot."""
    from imagepipe import tables

    fingerprint = feature_run.fingerprint
    snapshots = {table: tables.current_snapshot(spark, table) for table in (lake.features(fingerprint), lake.images)}
    return TrainingRead(fingerprint, feature_run.preprocessing, window.end.isoformat(), training_days, snapshots)


def read_of_version(lake: Lake, metadata: dict) -> TrainingRead:
    """The training read of an earlier version, from its metadata: the same feature space, window end, days and
    table snapshots (time travel), so training sees exactly that version's rows whatever was ingested since."""
    version, fingerprint = metadata["version"], metadata["fingerprint"]
    recorded = metadata.get("snapshots")
    if not recorded:
        raise InputError(f"version {version} records no lake snapshots (it was trained before the lake kept "
                         "them), so its training rows cannot be read again; train on the current lake instead")
    snapshots = {table: recorded.get(table.identifier) for table in (lake.features(fingerprint), lake.images)}
    missing = [table.identifier for table, snapshot in snapshots.items() if snapshot is None]
    if missing:
        raise InputError(f"version {version} records no snapshot of {', '.join(missing)} in this lake; "
                         "give a version trained on this dataset's lake")
    return TrainingRead(fingerprint, metadata.get("preprocessing"), metadata["data_window_end"],
                        metadata.get("training_days"), snapshots)


def with_split(features):
    """Add a split column from the image's sha256, so an image lands in the same split in every run and copies of
    one image can never straddle train and test."""
    from pyspark.sql import functions as F

    bucket = F.conv(F.substring("sha256", 1, 8), 16, 10).cast("long") % 100
    split = (F.when(bucket < SPLITS[0][1], SPLITS[0][0]).when(bucket < SPLITS[1][1], SPLITS[1][0])
             .otherwise(SPLITS[2][0]))
    return features.withColumn("split", split)


def features_up_to(features, window_end_id: str, since_id: str | None = None):
    """Feature rows of every window that ended by the run's window end (and, given since_id, after it)."""
    from pyspark.sql import functions as F

    window_end = F.substring_index(WINDOW_COLUMN, "_", -1)
    selected = features.filter(window_end <= window_end_id)
    return selected if since_id is None else selected.filter(window_end > since_id)


def training_since_id(window, training_days: int | None) -> str | None:
    """The window end id that training images' windows must end after, to train on the last training_days days
    before the run's window end; None to train on every image up to it."""
    from datetime import timedelta

    from imagepipe.windows import Window

    if training_days is None:
        return None
    return Window(window.end - timedelta(days=training_days), window.end).id.split("_")[0]


def check_one_feature_space(features, fingerprint: str) -> None:
    """Refuse a feature table holding rows of another feature space: vectors of two spaces are not comparable."""
    others = [row["fingerprint"] for row in features.select("fingerprint").distinct().collect()
              if row["fingerprint"] != fingerprint]
    if others:
        raise InputError(
            f"feature table of {fingerprint} holds rows of {', '.join(sorted(others))}; "
            "re-run extract_features for this space"
        )


def split_features(spark, lake, fingerprint: str, window_end_id: str, since_id: str | None = None,
                   snapshot_id: int | None = None):
    """The feature space's rows of every window that ended by the run's window end (and, given since_id, after it),
    each with its split, as of the table's snapshot_id (default: its current one); refuses a table holding rows of
    another space."""
    from imagepipe import tables

    features = tables.read(spark, lake.features(fingerprint), snapshot_id)
    if features is None:
        raise InputError(f"feature space {fingerprint} has no table {lake.features(fingerprint).identifier}: "
                         "run extract_features first")
    selected = with_split(features_up_to(features, window_end_id, since_id))
    check_one_feature_space(selected, fingerprint)
    return selected


def spread(features, partitions: int):
    """The rows hashed by image over `partitions` partitions, each sorted by image. A lake's feature rows sit in one
    file per window, so a lake ingested in one large window reads as one partition and MLlib would fit it on one
    core; the hash and the sort keep each partition's rows, and their order, the same in every run."""
    return features.repartition(partitions, "sha256").sortWithinPartitions("sha256")


def as_vectors(features):
    """The MLlib vector form of the stored float arrays."""
    from pyspark.ml.functions import array_to_vector

    return features.withColumn(FEATURE_VECTOR, array_to_vector(FEATURES_COLUMN))


def check_class_counts(counts: dict[str, int], min_per_class: int) -> None:
    """Refuse training data with fewer than two classes or a class below the minimum, naming them."""
    if len(counts) < 2:
        found = ", ".join(f"{label}={count}" for label, count in sorted(counts.items())) or "none"
        raise InputError(f"training needs at least two classes with images; found {found}")
    small = {label: count for label, count in sorted(counts.items()) if count < min_per_class}
    if small:
        listed = ", ".join(f"{label}={count}" for label, count in small.items())
        raise InputError(
            f"classes below min_examples_per_class={min_per_class} in the training split: {listed}; "
            "add images or lower the minimum"
        )


def with_folds(train, folds: int):
    """Add the cross-validation fold of each image, from other bits of its sha256 than the split: model selection
    is as reproducible as the split itself."""
    from pyspark.sql import functions as F

    return train.withColumn(FOLD_COLUMN, (F.conv(F.substring("sha256", 9, 8), 16, 10).cast("long") % folds).cast("int"))


def balanced_weights(counts: dict[str, int]) -> dict[str, float]:
    """Per-class weights n / (classes * n_class): every class weighs the same in the loss however many images it has."""
    total = sum(counts.values())
    return {label: total / (len(counts) * count) for label, count in sorted(counts.items())}


def with_class_weights(train, weights: dict[str, float]):
    from pyspark.sql import functions as F

    lookup = F.create_map(*[item for label, weight in weights.items() for item in (F.lit(label), F.lit(weight))])
    return train.withColumn(WEIGHT_COLUMN, lookup[F.col("label")])


def fit_classifier(train, spec: ModelSpec, feature_dimension: int):
    """(PipelineModel, chosen hyperparameters, selection results) on the training split.

    With one grid point the pipeline is fitted directly; with several, MLlib's CrossValidator picks the point with
    the best weighted F1 over deterministic folds of the training split, then refits it on the whole split.
    """
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.tuning import CrossValidator

    # Unknown labels at scoring time map to an extra index and count as errors, rather than failing the job.
    indexer = StringIndexer(inputCol="label", outputCol=LABEL_INDEX, stringOrderType="alphabetAsc",
                            handleInvalid="keep")
    pipeline, param_maps = build_pipeline(spec, indexer.fit(train), feature_dimension)
    vectors = as_vectors(train)
    if len(param_maps) == 1:
        return pipeline.fit(vectors, param_maps[0]), spec.grid[0], []
    evaluator = MulticlassClassificationEvaluator(labelCol=LABEL_INDEX, metricName="f1")
    selection = CrossValidator(
        estimator=pipeline, estimatorParamMaps=param_maps, evaluator=evaluator, numFolds=spec.folds,
        foldCol=FOLD_COLUMN, seed=spec.seed,
    ).fit(with_folds(vectors, spec.folds))
    results = [{"hyperparameters": point, "weighted_f1": metric}
               for point, metric in zip(spec.grid, selection.avgMetrics, strict=True)]
    best = max(range(len(results)), key=lambda i: selection.avgMetrics[i])
    return selection.bestModel, spec.grid[best], results


def model_labels(model) -> list[str]:
    return list(model.stages[0].labels)
