"""The gallery's choice of test images on real local Spark, from real classifiers' predictions over overlapping
Gaussian clusters (so some images are misclassified)."""

from __future__ import annotations

import hashlib
import random

import pytest

from imagepipe import gallery
from imagepipe.classifiers import model_spec
from imagepipe.evaluation import classification_metrics, score
from imagepipe.training import fit_classifier

# Fits two classifiers: make test only.
pytestmark = pytest.mark.slow
LABELS = ("beach", "forest", "night_sky")


def _frame(spark, per_label: int, seed: int):
    rng = random.Random(seed)
    rows = [(hashlib.sha256(f"{seed}-{label}-{n}".encode()).hexdigest(), label,
             [(1.0 if d == position else 0.0) + rng.gauss(0, 0.6) for d in range(3)], f"w{n % 2}")
            for position, label in enumerate(LABELS) for n in range(per_label)]
    return spark.createDataFrame(rows, "sha256 string, label string, features array<float>, window_id string")


@pytest.fixture(scope="module")
def scored(spark):
    """(predictions, per-class metrics) of each classifier on the same test rows."""
    train, test = _frame(spark, 40, seed=1), _frame(spark, 20, seed=2)
    found = {}
    for classifier, hyperparameters in (("logistic_regression", {"max_iter": 30}), ("linear_svc", {"max_iter": 10})):
        model, _, _ = fit_classifier(train, model_spec(classifier, hyperparameters, [], "none", 3), 3)
        predictions = score(model, test).persist()
        found[classifier] = predictions, classification_metrics(predictions, list(model.stages[0].labels))
    return found


def test_the_gallery_shows_every_mistake_most_confident_first_with_its_probability(scored):
    predictions, metrics = scored["logistic_regression"]
    truth = {row["sha256"]: row for row in predictions.collect()}
    wrong = {sha for sha, row in truth.items() if row["label"] != row["predicted_label"]}

    chosen = gallery.choose(predictions, metrics["per_class"])

    assert 0 < len(wrong) < 60 and chosen["misclassified_total"] == len(wrong)
    assert {row["sha256"] for row in chosen["misclassified"]} == wrong
    for row in chosen["misclassified"]:
        assert (row["label"], row["predicted"]) == (truth[row["sha256"]]["label"],
                                                     truth[row["sha256"]]["predicted_label"])
        assert row["probability"] == pytest.approx(max(truth[row["sha256"]]["probability"]))
        assert row["window_id"] == truth[row["sha256"]]["window_id"]
    probabilities = [row["probability"] for row in chosen["misclassified"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert chosen["probabilities"] is True


def test_the_gallery_shows_a_few_correct_images_of_each_class(scored):
    predictions, metrics = scored["logistic_regression"]

    chosen = gallery.choose(predictions, metrics["per_class"])

    by_class = {label: [row for row in chosen["correct"] if row["label"] == label] for label in LABELS}
    assert {label: len(rows) for label, rows in by_class.items()} == dict.fromkeys(LABELS, gallery.CORRECT_PER_CLASS)
    assert all(row["predicted"] == row["label"] for row in chosen["correct"])
    for rows in by_class.values():  # the most confident first
        assert [row["probability"] for row in rows] == sorted((row["probability"] for row in rows), reverse=True)


def test_the_gallerys_mistakes_are_capped(scored, monkeypatch):
    predictions, metrics = scored["logistic_regression"]
    monkeypatch.setattr(gallery, "MAX_MISCLASSIFIED", 2)

    chosen = gallery.choose(predictions, metrics["per_class"])

    assert len(chosen["misclassified"]) == 2 and chosen["misclassified_total"] > 2


def test_a_classifier_without_probabilities_has_a_gallery_without_them(scored):
    predictions, metrics = scored["linear_svc"]

    chosen = gallery.choose(predictions, metrics["per_class"])

    assert chosen["probabilities"] is False
    assert chosen["misclassified"] and chosen["correct"]
    assert {row["probability"] for row in chosen["misclassified"] + chosen["correct"]} == {None}
