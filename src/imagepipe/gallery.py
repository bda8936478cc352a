"""The evaluation report's gallery: which test images it shows, and their thumbnails.

It shows every misclassified test image up to MAX_MISCLASSIFIED, the most confident mistakes first, and a few
correctly classified ones per class: CORRECT_PER_CLASS each while the classes fit under MAX_CORRECT, else fewer each
(at least one) for the classes with the lowest F1. So a version holds at most MAX_MISCLASSIFIED + MAX_CORRECT
thumbnails however many classes and test images it has.

Thumbnails are made at evaluation from the lake's bytes of each image, upright by its EXIF orientation, as JPEGs at
most THUMBNAIL_SIDE pixels on a side, and stored in the model version (thumbnails/<sha256>.jpg), where its manifest
records them like every other file.
"""

from __future__ import annotations

import io

from imagepipe import tables
from imagepipe.classifiers import PREDICTED_LABEL
from imagepipe.lake import WINDOW_COLUMN, Lake

THUMBNAIL_SIDE = 96
MAX_MISCLASSIFIED = 60
CORRECT_PER_CLASS = 3
MAX_CORRECT = 60


def thumbnail_name(sha256: str) -> str:
    return f"thumbnails/{sha256}.jpg"


def thumbnail(content: bytes, side: int = THUMBNAIL_SIDE) -> bytes:
    """The image as a JPEG at most `side` pixels on its longer side, upright by its EXIF orientation, in RGB."""
    from PIL import Image, ImageOps

    from imagepipe.preprocessing import to_rgb

    with Image.open(io.BytesIO(content)) as image:
        image.draft("RGB", (side, side))  # a JPEG decodes at the smallest scale still at least `side` on a side
        small = to_rgb(ImageOps.exif_transpose(image))
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def correct_quota(per_class: dict) -> tuple[list[str], int]:
    """(classes, examples of each) for the correctly classified part of the gallery (see the module's doc)."""
    tested = sorted((label for label, row in per_class.items() if row["support"]),
                    key=lambda label: (per_class[label]["f1"], label))
    each = max(1, min(CORRECT_PER_CLASS, MAX_CORRECT // max(1, len(tested))))
    return tested[:MAX_CORRECT // each], each


def choose(predictions, per_class: dict) -> dict:
    """The gallery's examples from a model's scored test rows (sha256, label, window, predicted label and, when the
    model gives them, probabilities), with the candidate's per-class metrics: a document of plain values."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    has_probability = "probability" in predictions.columns
    # The probability the model gave the label it predicted; a linear SVC gives none.
    probability = (vector_to_array("probability")[F.col("prediction").cast("int")] if has_probability
                   else F.lit(None).cast("double"))
    rows = predictions.select("sha256", "label", F.col(PREDICTED_LABEL).alias("predicted"),
                              probability.alias("probability"), WINDOW_COLUMN)
    confident_first = [F.desc_nulls_last("probability"), F.asc("sha256")]
    wrong = rows.filter(F.col("label") != F.col("predicted"))
    classes, each = correct_quota(per_class)
    rank = F.row_number().over(Window.partitionBy("label").orderBy(*confident_first))
    right = (rows.filter((F.col("label") == F.col("predicted")) & F.col("label").isin(classes))
             .withColumn("rank", rank).filter(F.col("rank") <= each).drop("rank"))
    return {
        "thumbnail_side": THUMBNAIL_SIDE,
        "probabilities": has_probability,
        "misclassified": [row.asDict() for row in wrong.orderBy(*confident_first).limit(MAX_MISCLASSIFIED).collect()],
        "misclassified_total": wrong.count(),
        "correct": [row.asDict() for row in right.orderBy("label", *confident_first).collect()],
        "correct_each": each,
        "correct_classes": len(classes),
        "classes_tested": sum(1 for row in per_class.values() if row["support"]),
    }


def thumbnails(spark, lake: Lake, examples: list[dict]) -> dict[str, bytes]:
    """{thumbnail name: JPEG} of the examples' images, made on the executors from the lake's bytes (read only from
    the examples' windows). An image the lake no longer holds has no thumbnail."""
    from pyspark.sql import functions as F

    if not examples:
        return {}
    make = F.udf(thumbnail, "binary", useArrow=False)  # one row at a time: a gallery is a hundred images or so
    images = (tables.read(spark, lake.images)
              .filter(F.col(WINDOW_COLUMN).isin(sorted({example[WINDOW_COLUMN] for example in examples}))
                      & F.col("sha256").isin(sorted({example["sha256"] for example in examples})))
              .dropDuplicates(["sha256"]))
    return {thumbnail_name(row["sha256"]): row["thumbnail"]
            for row in images.select("sha256", make("content").alias("thumbnail")).collect()}


def gallery(spark, lake: Lake, predictions, per_class: dict) -> tuple[dict, dict[str, bytes]]:
    """(the gallery document, its thumbnails by file name): each example names its thumbnail, or None when the lake
    no longer holds the image's bytes."""
    document = choose(predictions, per_class)
    files = thumbnails(spark, lake, document["misclassified"] + document["correct"])
    for example in document["misclassified"] + document["correct"]:
        name = thumbnail_name(example["sha256"])
        example["thumbnail"] = name if name in files else None
    return document, files
