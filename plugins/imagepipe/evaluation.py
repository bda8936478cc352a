"""Scoring on the held-out split, metrics from MLlib's evaluators, and the gate's verdict."""

from __future__ import annotations

from imagepipe.training import LABEL_INDEX, as_vectors

# Metrics are ratios of counts: a candidate exactly at a threshold must not fail on binary rounding (0.8 - 0.1).
TOLERANCE = 1e-9


def score(model, features):
    return model.transform(as_vectors(features))


def classification_metrics(predictions) -> dict:
    """Accuracy and F1 on scored rows, from MLlib's MulticlassClassificationEvaluator."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    evaluator = MulticlassClassificationEvaluator(labelCol=LABEL_INDEX, predictionCol="prediction")
    return {
        "accuracy": evaluator.evaluate(predictions, {evaluator.metricName: "accuracy"}),
        "weighted_f1": evaluator.evaluate(predictions, {evaluator.metricName: "f1"}),
        "rows": predictions.count(),
    }


def decide(candidate: dict, champion: dict | None, min_accuracy: float, max_accuracy_drop: float) -> dict:
    """The verdict on a candidate: every check with its value, threshold and outcome; passed only if all pass."""
    checks = [
        {
            "name": "min_accuracy",
            "value": candidate["accuracy"],
            "threshold": min_accuracy,
            "passed": candidate["accuracy"] >= min_accuracy - TOLERANCE,
            "detail": f"test accuracy {candidate['accuracy']:.4f} must be >= {min_accuracy:.4f}",
        }
    ]
    if champion is not None:
        floor = champion["accuracy"] - max_accuracy_drop
        checks.append(
            {
                "name": "not_worse_than_champion",
                "value": candidate["accuracy"],
                "threshold": floor,
                "passed": candidate["accuracy"] >= floor - TOLERANCE,
                "detail": f"test accuracy {candidate['accuracy']:.4f} must be >= champion's {champion['accuracy']:.4f} "
                f"minus {max_accuracy_drop:.4f}",
            }
        )
    return {"passed": all(check["passed"] for check in checks), "checks": checks}


def explain(verdict: dict) -> list[str]:
    """One line per check, for logs and summaries."""
    return [f"{'PASS' if check['passed'] else 'FAIL'} {check['name']}: {check['detail']}" for check in verdict["checks"]]
