"""Scoring a model on held-out images and its metrics: per class and accuracy from the confusion matrix's counts (one
aggregate), weighted F1 and log loss from MLlib's MulticlassClassificationEvaluator. The formulas are MLlib's
MulticlassMetrics' own, in its order of operations, so the figures are the same to the last bit, without the RDD API."""

from __future__ import annotations

import collections

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
    # Several passes over the predictions: cached here unless the caller cached them for passes of its own.
    cached_here = not predictions.is_cached
    predictions = predictions.persist()
    rows = predictions.count()
    names = [*labels, UNSEEN_LABEL]
    cells = {(int(row[LABEL_INDEX]), int(row["prediction"])): row["count"]
             for row in predictions.groupBy(LABEL_INDEX, "prediction").count().collect()}
    # Every class of the model, plus the unseen-label row when the test split has one.
    indices = sorted(set(range(len(labels))) | {true for true, _ in cells})
    matrix = [[cells.get((true, predicted), 0) for predicted in indices] for true in indices]
    predicted = collections.Counter()
    for (_, prediction), count in cells.items():
        predicted[prediction] += count
    per_class = {names[index]: _class_metrics(cells.get((index, index), 0), predicted[index], sum(matrix[position]))
                 for position, index in enumerate(indices)}
    with_support = [row["f1"] for row in per_class.values() if row["support"] > 0]
    result = {
        "rows": rows,
        "accuracy": sum(matrix[position][position] for position in range(len(indices))) / rows if rows else None,
        "macro_f1": sum(with_support) / len(with_support) if with_support else None,
        "weighted_f1": _evaluate(predictions, "f1") if rows else None,
        "per_class": per_class,
        "confusion_matrix": {"labels": [names[index] for index in indices], "counts": matrix},
        "log_loss": None,
        "labels": list(labels),
    }
    if rows and "probability" in predictions.columns:
        result["log_loss"] = _evaluate(predictions, "logLoss")
    if cached_here:
        predictions.unpersist()
    return result


def _class_metrics(true_positives: int, predicted: int, support: int) -> dict:
    """Precision, recall and F1 of one class as MulticlassMetrics computes them (0 where a ratio has no cases), None
    for a class without test images."""
    if not support:
        return {"precision": None, "recall": None, "f1": None, "support": support}
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / support
    f1 = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (1.0 * precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def _evaluate(predictions, metric: str) -> float:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    return MulticlassClassificationEvaluator(labelCol=LABEL_INDEX, metricName=metric).evaluate(predictions)
