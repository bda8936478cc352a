"""Training data and the classifier: deterministic splits, class checks, and an MLlib PipelineModel that takes
feature arrays and returns label strings."""

from __future__ import annotations

from imagepipe.errors import InputError
from imagepipe.featurizer import FEATURES_COLUMN
from imagepipe.lake import WINDOW_COLUMN

LABEL_INDEX = "label_index"
FEATURE_VECTOR = "feature_vector"
PREDICTED_LABEL = "predicted_label"
SPLITS = (("train", 80), ("validation", 90), ("test", 100))  # cumulative percent of the sha256 hash space


def with_split(features):
    """Add a split column from the image's sha256, so an image lands in the same split in every run and copies of
    one image can never straddle train and test."""
    from pyspark.sql import functions as F

    bucket = F.conv(F.substring("sha256", 1, 8), 16, 10).cast("long") % 100
    split = F.when(bucket < SPLITS[0][1], SPLITS[0][0]).when(bucket < SPLITS[1][1], SPLITS[1][0]).otherwise(SPLITS[2][0])
    return features.withColumn("split", split)


def features_up_to(features, window_end_id: str):
    """Feature rows of every window that ended by the run's window end."""
    from pyspark.sql import functions as F

    return features.filter(F.substring_index(WINDOW_COLUMN, "_", -1) <= window_end_id)


def check_one_feature_space(features, fingerprint: str) -> None:
    """Refuse a feature table holding rows of another feature space: vectors of two spaces are not comparable."""
    others = [row["fingerprint"] for row in features.select("fingerprint").distinct().collect() if row["fingerprint"] != fingerprint]
    if others:
        raise InputError(
            f"feature table of {fingerprint} holds rows of {', '.join(sorted(others))}; re-run extract_features for this space"
        )


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


def fit_classifier(train, reg_param: float, max_iter: int):
    """Fit label indexing + multinomial logistic regression + index-to-label as one PipelineModel."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import IndexToString, StringIndexer

    # Unknown labels at scoring time map to an extra index and count as errors, rather than failing the job.
    indexer = StringIndexer(inputCol="label", outputCol=LABEL_INDEX, stringOrderType="alphabetAsc", handleInvalid="keep")
    indexer_model = indexer.fit(train)
    classifier = LogisticRegression(
        featuresCol=FEATURE_VECTOR, labelCol=LABEL_INDEX, family="multinomial", regParam=reg_param, maxIter=max_iter
    )
    to_label = IndexToString(inputCol="prediction", outputCol=PREDICTED_LABEL, labels=indexer_model.labels)
    return Pipeline(stages=[indexer_model, classifier, to_label]).fit(as_vectors(train))


def model_labels(model) -> list[str]:
    return list(model.stages[0].labels)
