"""The classifiers, model selection, feature transformations and metrics on real local Spark, with feature vectors
whose right answer is known: three well-separated Gaussian clusters."""

from __future__ import annotations

import hashlib
import random

import pytest

from imagepipe.classifiers import HYPERPARAMETERS, model_spec
from imagepipe.evaluation import classification_metrics, score
from imagepipe.training import balanced_weights, fit_classifier, spread, with_class_weights, with_split

LABELS = ("beach", "forest", "night_sky")
DIMENSION = 6


def _rows(count_per_label: int, seed: int, noise: float = 0.3) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for position, label in enumerate(LABELS):
        for n in range(count_per_label):
            centre = [4.0 if d == position else 0.0 for d in range(DIMENSION)]
            vector = [c + rng.gauss(0, noise) for c in centre]
            sha = hashlib.sha256(f"{seed}-{label}-{n}".encode()).hexdigest()
            rows.append((sha, label, vector, "w"))
    return rows


def _frame(spark, rows):
    return spark.createDataFrame(rows, "sha256 string, label string, features array<float>, window_id string")


@pytest.fixture(scope="module")
def clusters(spark):
    return _frame(spark, _rows(40, seed=1)), _frame(spark, _rows(15, seed=2))


@pytest.mark.parametrize(
    ("classifier", "hyperparameters", "transforms"),
    [
        ("logistic_regression", {}, []),
        ("linear_svc", {"max_iter": 10}, []),  # three classes: one-vs-rest
        ("random_forest", {"num_trees": 10, "max_depth": 4}, []),
        ("mlp", {"hidden_layers": [8], "max_iter": 100}, []),
        ("logistic_regression", {}, ["standard_scaler", "pca:2", "normalizer"]),
    ],
    ids=["logistic_regression", "linear_svc", "random_forest", "mlp", "with-transforms"],
)
def test_each_classifier_learns_separable_classes_and_returns_label_strings(clusters, classifier, hyperparameters,
                                                                           transforms):
    train, test = clusters
    spec = model_spec(classifier, hyperparameters, transforms, "none", 3)
    model, chosen, selection = fit_classifier(train, spec, DIMENSION)

    scored = score(model, test)
    metrics = classification_metrics(scored, list(model.stages[0].labels))
    assert metrics["accuracy"] >= 0.95
    assert {row["predicted_label"] for row in scored.select("predicted_label").collect()} == set(LABELS)
    assert selection == [] and chosen == spec.grid[0]
    assert (metrics["log_loss"] is None) == (classifier == "linear_svc")
    # The model was fitted with the hyperparameters the run records (one-vs-rest: each of its binary models).
    # (An MLP's layers add the input and output widths to its hidden_layers.)
    asked = {name: value for name, value in chosen.items() if name != "hidden_layers"}
    fitted = model.stages[-2]
    for estimator in getattr(fitted, "models", [fitted]):
        assert {name: estimator.getOrDefault(HYPERPARAMETERS[name].mllib_name) for name in asked} == asked


@pytest.mark.slow
def test_a_linear_svc_learns_two_classes(spark):
    two = LABELS[:2]
    train = _frame(spark, [row for row in _rows(40, seed=1) if row[1] in two])
    test = _frame(spark, [row for row in _rows(15, seed=2) if row[1] in two])

    model, _, _ = fit_classifier(train, model_spec("linear_svc", {"max_iter": 10}, [], "none", 3), DIMENSION)

    scored = score(model, test)
    assert classification_metrics(scored, list(model.stages[0].labels))["accuracy"] >= 0.95
    assert {row["predicted_label"] for row in scored.select("predicted_label").collect()} == set(two)


def test_model_selection_cross_validates_the_grid_and_keeps_the_best_point(clusters):
    train, _ = clusters
    # A huge L2 penalty flattens every class score: it cannot win against a small one.
    spec = model_spec("logistic_regression", {"reg_param": [50.0, 0.001], "max_iter": 15}, [], "none", 3)
    model, chosen, selection = fit_classifier(train, spec, DIMENSION)

    assert chosen["reg_param"] == 0.001
    assert [result["hyperparameters"]["reg_param"] for result in selection] == [50.0, 0.001]
    assert selection[1]["weighted_f1"] > selection[0]["weighted_f1"]
    assert model.stages[-2].getRegParam() == 0.001


def test_the_transformations_are_inside_the_saved_model(clusters, tmp_path):
    from pyspark.ml import PipelineModel

    train, test = clusters
    model, _, _ = fit_classifier(train, model_spec("logistic_regression", {}, ["pca:3"], "none", 3), DIMENSION)
    model.write().save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))

    assert [type(stage).__name__ for stage in loaded.stages] == [
        "StringIndexerModel", "PCAModel", "LogisticRegressionModel", "IndexToString"]
    assert classification_metrics(score(loaded, test), list(loaded.stages[0].labels))["accuracy"] >= 0.95


def test_centring_in_front_of_logistic_regression_leaves_its_predictions_unchanged(spark):
    """ReLU-like features (mostly zeros): the centred model scores as MLlib's logistic regression fitted on the raw
    vectors does, since the unpenalised intercept absorbs the shift."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import array_to_vector, vector_to_array

    rows = [(sha, label, [max(0.0, value - 2.0) for value in vector], w) for sha, label, vector, w in _rows(30, seed=5)]
    train = _frame(spark, rows)
    model, _, _ = fit_classifier(train, model_spec("logistic_regression", {}, [], "none", 3), DIMENSION)
    indexed = model.stages[0].transform(train).withColumn("raw", array_to_vector("features"))
    plain = LogisticRegression(family="multinomial", featuresCol="raw", labelCol="label_index",
                               regParam=0.01).fit(indexed)

    assert [type(stage).__name__ for stage in model.stages] == [
        "StringIndexerModel", "StandardScalerModel", "LogisticRegressionModel", "IndexToString"]
    assert not model.stages[1].getWithStd()
    def probabilities(scored) -> list[list[float]]:
        ordered = scored.select(vector_to_array("probability").alias("p"), "sha256").orderBy("sha256")
        return [row["p"] for row in ordered.collect()]

    centred, raw = probabilities(score(model, train)), probabilities(plain.transform(indexed))
    assert len(centred) == len(raw) == 90
    assert max(abs(a - b) for p, q in zip(centred, raw, strict=True) for a, b in zip(p, q, strict=True)) < 1e-4


def test_metrics_count_every_test_row_per_class_and_in_the_confusion_matrix(clusters):
    train, test = clusters
    model, _, _ = fit_classifier(train, model_spec("logistic_regression", {}, [], "none", 3), DIMENSION)
    metrics = classification_metrics(score(model, test), list(model.stages[0].labels))

    assert metrics["rows"] == 45
    assert {label: row["support"] for label, row in metrics["per_class"].items()} == dict.fromkeys(LABELS, 15)
    assert metrics["confusion_matrix"]["labels"] == list(LABELS)
    assert sum(map(sum, metrics["confusion_matrix"]["counts"])) == 45
    assert metrics["macro_f1"] == pytest.approx(sum(row["f1"] for row in metrics["per_class"].values()) / 3)


def test_a_label_the_model_never_saw_counts_as_an_error(spark, clusters):
    train, _ = clusters
    model, _, _ = fit_classifier(train, model_spec("logistic_regression", {}, [], "none", 3), DIMENSION)
    unseen = _frame(spark, [(sha, "snowfield", vector, w) for sha, _, vector, w in _rows(5, seed=9)])
    metrics = classification_metrics(score(model, unseen), list(model.stages[0].labels))

    assert metrics["accuracy"] == 0.0
    assert metrics["per_class"]["(not in training)"]["support"] == 15


def test_balanced_class_weights_make_every_class_weigh_the_same(spark):
    weights = balanced_weights({"beach": 30, "forest": 10})
    assert weights == {"beach": pytest.approx(40 / 60), "forest": pytest.approx(40 / 20)}

    rows = _rows(10, seed=4)
    weighted = with_class_weights(_frame(spark, rows), weights).collect()
    assert {row["label"]: row["class_weight"] for row in weighted if row["label"] != "night_sky"} == weights
    assert all(row["class_weight"] is None for row in weighted if row["label"] == "night_sky")


def test_adding_images_moves_no_existing_image_to_another_split(spark):
    before = {row["sha256"]: row["split"] for row in with_split(_frame(spark, _rows(100, seed=5))).collect()}
    grown = _frame(spark, _rows(100, seed=5) + _rows(100, seed=6))
    after = {row["sha256"]: row["split"] for row in with_split(grown).collect()}

    assert {sha: after[sha] for sha in before} == before
    shares = {split: list(after.values()).count(split) / len(after) for split in ("train", "validation", "test")}
    assert 0.7 < shares["train"] < 0.9 and 0.05 < shares["validation"] < 0.15 and 0.05 < shares["test"] < 0.15


def test_metrics_are_mllibs_multiclass_metrics_to_the_last_bit(spark, clusters):
    """The figures of today's evaluations are MulticlassMetrics' (the RDD API, which evaluation no longer uses):
    on predictions with mistakes and a label the model never saw, every figure is the same float."""
    from pyspark.mllib.evaluation import MulticlassMetrics

    from imagepipe.classifiers import LABEL_INDEX

    train, _ = clusters
    model, _, _ = fit_classifier(train, model_spec("logistic_regression", {}, [], "none", 3), DIMENSION)
    noisy = _rows(30, seed=11, noise=2.5) + [(sha, "snowfield", vector, w) for sha, _, vector, w in _rows(2, seed=12)]
    scored = score(model, _frame(spark, noisy)).persist()
    labels = list(model.stages[0].labels)

    metrics = classification_metrics(scored, labels)

    reference = MulticlassMetrics(scored.select("prediction", scored[LABEL_INDEX].cast("double")).rdd.map(tuple))
    assert 0.5 < metrics["accuracy"] < 1.0  # mistakes to count
    assert metrics["accuracy"] == reference.accuracy
    assert metrics["weighted_f1"] == reference.weightedFMeasure()
    for index, label in enumerate([*labels, "(not in training)"]):
        row = metrics["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == (
            reference.precision(float(index)), reference.recall(float(index)), reference.fMeasure(float(index), 1.0))


def test_rows_read_as_one_partition_are_spread_over_every_core_in_the_same_order_each_time(spark):
    # A lake ingested in one window is one file, read as one partition: MLlib would fit it on one core.
    one_file = _frame(spark, _rows(100, seed=7)).coalesce(1)
    spread_rows = spread(one_file, 2)
    per_partition = spread_rows.rdd.glom().map(lambda rows: [row["sha256"] for row in rows]).collect()

    assert len(per_partition) == 2 and all(len(rows) > 100 for rows in per_partition)
    assert all(rows == sorted(rows) for rows in per_partition)
    assert spread(_frame(spark, _rows(100, seed=7)).coalesce(1), 2).rdd.glom().map(
        lambda rows: [row["sha256"] for row in rows]).collect() == per_partition


def test_the_drift_reference_takes_its_components_from_a_bounded_sample_the_same_each_time(spark):
    from imagepipe.drift import component_sample

    train = _frame(spark, _rows(400, seed=8))  # 1,200 rows
    sample = {row["sha256"] for row in component_sample(train, 300).collect()}

    assert 200 < len(sample) < 400  # about 300: the covariance's cost stays bounded however large the lake
    assert {row["sha256"] for row in component_sample(train, 300).collect()} == sample
    assert component_sample(train, 5000).count() == 1200  # a smaller split is taken whole
