"""Scoring a model on held-out images and its metrics, from MLlib's MulticlassMetrics and
MulticlassClassificationEvaluator."""

from __future__ import annotations

from imagepipe.classifiers import LABEL_INDEX
from imagepipe.training import as_vectors

UNSEEN_LABEL = "(not in training)"


def score(model, features):
    return model.transform(as_vectors(features))


def classification_metrics(predictions, labels: list[str]) -> dict:
    """Accuracy, macro and weighted F1, per-class precision/recall/F1/support, the confusion matrix, log loss
    when the model gives probabilities, and the model's labels (what the gate's label_set check compares).

    `labels` are the model's labels in index order; a test label the model never saw gets the extra index its
    indexer keeps for it, shown as UNSEEN_LABEL, and counts as an error. Macro F1 is the mean F1 over the classes
    that have test images.
    """
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.mllib.evaluation import MulticlassMetrics

    # Several passes over the predictions: cached here unless the caller cached them for passes of its own.
    cached_here = not predictions.is_cached
    predictions = predictions.persist()
    rows = predictions.count()
    names = [*labels, UNSEEN_LABEL]
    cells = {(int(row[LABEL_INDEX]), int(row["prediction"])): row["count"]
             for row in predictions.groupBy(LABEL_INDEX, "prediction").count().collect()}
    # Every class of the model, plus the unseen-label row when the test split has one: MulticlassMetrics' own
    # matrix covers only the labels present in the test split.
    indices = sorted(set(range(len(labels))) | {true for true, _ in cells})
    matrix = [[cells.get((true, predicted), 0) for predicted in indices] for true in indices]
    pairs = predictions.select("prediction", predictions[LABEL_INDEX].cast("double"))
    metrics = MulticlassMetrics(pairs.rdd.map(tuple))
    per_class = {}
    for position, index in enumerate(indices):
        support = sum(matrix[position])
        per_class[names[index]] = {
            "precision": metrics.precision(float(index)) if support else None,
            "recall": metrics.recall(float(index)) if support else None,
            "f1": metrics.fMeasure(float(index), 1.0) if support else None,
            "support": support,
        }
    with_support = [row["f1"] for row in per_class.values() if row["support"] > 0]
    result = {
        "rows": rows,
        "accuracy": metrics.accuracy if rows else None,
        "macro_f1": sum(with_support) / len(with_support) if with_support else None,
        "weighted_f1": metrics.weightedFMeasure() if rows else None,
        "per_class": per_class,
        "confusion_matrix": {"labels": [names[index] for index in indices], "counts": matrix},
        "log_loss": None,
        "labels": list(labels),
    }
    if rows and "probability" in predictions.columns:
        evaluator = MulticlassClassificationEvaluator(labelCol=LABEL_INDEX, metricName="logLoss")
        result["log_loss"] = evaluator.evaluate(predictions)
    if cached_here:
        predictions.unpersist()
    return result
