"""Batch scoring: label unlabelled images with a registered model, in the feature space it was trained on.

Objects are fetched and validated as ingest does; each distinct image is featurised once and scored; every listed
object gets one prediction row, or its reason when it could not be scored (rejected, or refused by the decoder).
"""

from __future__ import annotations

from imagepipe.classifiers import PREDICTED_LABEL
from imagepipe.evaluation import score
from imagepipe.features import extract_features
from imagepipe.featurizer import ERROR_COLUMN

PREDICTION_COLUMNS = ["key", "etag", "sha256", PREDICTED_LABEL, "probability", "model_name", "model_version",
                      "fingerprint", "reason", "run_id"]


def predict(model, features):
    """(sha256, predicted_label, probability) for feature rows; probability is the model's for the label it chose,
    null for a model without probabilities (linear_svc)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    # The saved pipeline starts with the training label indexer, which needs its column; an absent label is kept
    # as the indexer's "unseen" value and plays no part in the prediction.
    scored = score(model, features.withColumn("label", F.lit(None).cast("string")))
    probability = (F.element_at(vector_to_array("probability"), F.col("prediction").cast("int") + 1)
                   if "probability" in scored.columns else F.lit(None))
    return scored.select("sha256", PREDICTED_LABEL, probability.cast("double").alias("probability"))


def featurize(fetched, spec, fingerprint: str):
    """(sha256, features, error) of each distinct image `fetched` accepted, in the feature space `spec` makes."""
    from pyspark.sql import functions as F

    images = fetched.filter(F.col("reason").isNull()).select("sha256", "content").dropDuplicates(["sha256"])
    return extract_features(images, spec, fingerprint, keys=("sha256",))


def prediction_rows(fetched, extracted, model, fingerprint: str, model_name: str, version: int, run_id: str):
    """One row per fetched object (PREDICTION_COLUMNS) from ingest's fetch_and_validate rows and their images'
    features: an object it rejected keeps that reason, an image the backbone could not decode gets the decoder's."""
    from pyspark.sql import functions as F

    predicted = predict(model, extracted.filter(F.col(ERROR_COLUMN).isNull()))
    undecodable = extracted.filter(F.col(ERROR_COLUMN).isNotNull()).select("sha256", F.col(ERROR_COLUMN).alias("error"))
    return (
        fetched.select("key", "etag", "sha256", "reason")
        .join(predicted, "sha256", "left")
        .join(undecodable, "sha256", "left")
        .withColumns({
            "reason": F.coalesce("reason", "error"),
            "model_name": F.lit(model_name),
            "model_version": F.lit(version),
            "fingerprint": F.lit(fingerprint),
            "run_id": F.lit(run_id),
        })
        .select(*PREDICTION_COLUMNS)
    )
