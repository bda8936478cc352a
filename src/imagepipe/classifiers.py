"""What a model is made of: an MLlib classifier, its hyperparameter grid, and the feature transformations that run
inside the saved PipelineModel (so consumers never repeat them).

The specification is validated here without Spark, so the train job refuses bad input in one line before any Spark
work; `build_pipeline` then turns it into MLlib stages.

    classifier          logistic_regression | linear_svc | random_forest | mlp
    hyperparameters     {name: value or [values...]}: a list is a grid to select from (CrossValidator)
    feature_transforms  ["standard_scaler", "normalizer", "pca:K"], applied in order before the classifier

The fitted model may hold more transforms than asked for (`fitted_transforms`): a StandardScaler for the classifier
that needs one, and centring for logistic regression (see `ClassifierKind.centres_features`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from imagepipe.errors import InputError

LABEL_INDEX = "label_index"
FEATURE_VECTOR = "feature_vector"
PREDICTED_LABEL = "predicted_label"
WEIGHT_COLUMN = "class_weight"
FOLD_COLUMN = "fold"


def _number_or_axis(value_type: str, **bounds) -> dict:
    """JSON Schema of a hyperparameter that takes one number within bounds, or a non-empty list of them (a grid
    axis). Each keyword applies to its own JSON type: the bounds to the number, minItems and items to the list."""
    return {"type": [value_type, "array"], **bounds, "minItems": 1, "items": {"type": value_type, **bounds}}


@dataclass(frozen=True)
class Hyperparameter:
    mllib_name: str
    schema: dict  # JSON Schema of its value: the trigger form and the train job validate against it (imagepipe.params)

    @property
    def takes_a_list(self) -> bool:
        """One value is itself a list (hidden layer widths), so a grid axis is a list of lists."""
        return self.schema["type"] == "array"


HIDDEN_LAYERS_SCHEMA = {
    # One network's widths, [256, 64], or a grid axis of them, [[128], [256, 64]]: each item a width or a list.
    "type": "array", "minItems": 1,
    "items": {"type": ["integer", "array"], "minimum": 1, "minItems": 1, "items": {"type": "integer", "minimum": 1}},
}
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "reg_param": Hyperparameter("regParam", _number_or_axis("number", minimum=0)),
    "elastic_net_param": Hyperparameter("elasticNetParam", _number_or_axis("number", minimum=0, maximum=1)),
    "max_iter": Hyperparameter("maxIter", _number_or_axis("integer", minimum=1)),
    "num_trees": Hyperparameter("numTrees", _number_or_axis("integer", minimum=1)),
    "max_depth": Hyperparameter("maxDepth", _number_or_axis("integer", minimum=0, maximum=30)),  # MLlib's own limit
    "step_size": Hyperparameter("stepSize", _number_or_axis("number", exclusiveMinimum=0)),
    "hidden_layers": Hyperparameter("layers", HIDDEN_LAYERS_SCHEMA),
}


@dataclass(frozen=True)
class ClassifierKind:
    defaults: dict[str, object]  # the hyperparameters it takes (HYPERPARAMETERS) and their default values
    class_weights: bool  # MLlib takes a weight column for this classifier
    needs_scaling: bool  # no standardisation of its own: a StandardScaler goes in front
    # MLlib stacks the training rows into blocks that it stores sparse when a third or more of the values are zero,
    # as they are in ReLU features, and its multinomial gradient on sparse blocks costs about 3x the dense one
    # (bench/RESULTS.md). Centred features are dense; the unpenalised intercept absorbs the shift, so the fitted
    # model is the same.
    centres_features: bool = False


CLASSIFIERS: dict[str, ClassifierKind] = {
    "logistic_regression": ClassifierKind(
        {"reg_param": 0.01, "elastic_net_param": 0.0, "max_iter": 100},
        class_weights=True, needs_scaling=False, centres_features=True,
    ),
    "linear_svc": ClassifierKind({"reg_param": 0.01, "max_iter": 100}, class_weights=True, needs_scaling=False),
    "random_forest": ClassifierKind({"num_trees": 50, "max_depth": 8}, class_weights=True, needs_scaling=False),
    "mlp": ClassifierKind(
        {"hidden_layers": [128], "max_iter": 200, "step_size": 0.03}, class_weights=False, needs_scaling=True,
    ),
}
TRANSFORMS = ("standard_scaler", "normalizer", "pca")
TRANSFORM_PATTERN = r"^(standard_scaler|normalizer|pca:[1-9][0-9]*)$"  # one item of feature_transforms
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class ModelSpec:
    classifier: str = "logistic_regression"
    grid: list[dict] = field(default_factory=lambda: [{}])  # hyperparameter points; one point: no selection
    transforms: list[tuple[str, int | None]] = field(default_factory=list)
    class_weights: str = "none"
    folds: int = 3
    seed: int = 42

    def to_json(self) -> dict:
        return {"classifier": self.classifier, "grid": self.grid,
                "feature_transforms": _spelled(self.transforms), "fitted_transforms": _spelled(fitted_transforms(self)),
                "class_weights": self.class_weights, "selection_folds": self.folds, "seed": self.seed}


def _spelled(transforms: list[tuple[str, int | None]]) -> list[str]:
    return [name if k is None else f"{name}:{k}" for name, k in transforms]


def fitted_transforms(spec: ModelSpec) -> list[tuple[str, int | None]]:
    """The transforms the model holds in front of its classifier: the asked ones, then those the classifier needs."""
    transforms = list(spec.transforms)
    kind = CLASSIFIERS[spec.classifier]
    if kind.needs_scaling and ("standard_scaler", None) not in transforms:
        transforms.append(("standard_scaler", None))
    # A StandardScaler (centring) or PCA (a projection) already gives dense vectors; a Normalizer keeps zeros.
    if kind.centres_features and not any(name in ("standard_scaler", "pca") for name, _ in transforms):
        transforms.append(("center", None))
    return transforms


def hyperparameter_grid(classifier: str, hyperparameters: dict) -> list[dict]:
    """Every combination of the given values, each a full point (defaults filled in), in a stable order.

    Each value has passed its hyperparameter's schema (the train job checks them at parse); what is checked here is
    what one value's schema cannot say: which hyperparameters the classifier takes, and that a list of hidden layers
    is either one network's widths or a grid of them. A list value is a grid axis; for hidden_layers (itself a list)
    a list of lists is the axis.
    """
    if classifier not in CLASSIFIERS:
        raise InputError(f"classifier {classifier!r} is unknown; use one of {', '.join(CLASSIFIERS)}")
    defaults = CLASSIFIERS[classifier].defaults
    unknown = sorted(set(hyperparameters) - set(defaults))
    if unknown:
        raise InputError(f"hyperparameter {', '.join(unknown)} does not apply to {classifier}; "
                         f"it takes {', '.join(sorted(defaults))}")
    axes = {}
    for name, default in defaults.items():
        value = hyperparameters.get(name, default)
        if HYPERPARAMETERS[name].takes_a_list:
            kinds = {isinstance(item, list) for item in value}
            if len(kinds) > 1:
                raise InputError(f"hyperparameter {name}={value!r} of {classifier} mixes widths and lists of widths; "
                                 "give [256, 64] for one network or [[128], [256, 64]] for a grid")
            values = value if kinds == {True} else [value]
        else:
            values = value if isinstance(value, list) else [value]
        axes[name] = [_as_mllib_value(HYPERPARAMETERS[name].schema, v) for v in values]
    # Each grid point has one value per axis, in the axes' order.
    return [dict(zip(axes, point, strict=True)) for point in itertools.product(*axes.values())]


def _as_mllib_value(schema: dict, value):
    """The value as the Python type MLlib's param takes: a JSON integer may arrive as 50.0, a rate as 1."""
    if isinstance(value, list):
        return [_as_mllib_value(schema["items"], item) for item in value]
    return int(value) if "integer" in schema["type"] else float(value)


def parse_feature_transforms(items: list[str]) -> list[tuple[str, int | None]]:
    """["standard_scaler", "pca:64"] -> [("standard_scaler", None), ("pca", 64)]."""
    transforms = []
    for item in items:
        name, _, argument = item.strip().partition(":")
        if name not in TRANSFORMS:
            raise InputError(f"feature transform {item!r} is unknown; use standard_scaler, normalizer or pca:K")
        if name == "pca":
            if not argument.isdigit() or int(argument) < 1:
                raise InputError(f"feature transform {item!r} needs a positive component count, e.g. pca:64")
            transforms.append((name, int(argument)))
        elif argument:
            raise InputError(f"feature transform {item!r} takes no argument; write {name}")
        else:
            transforms.append((name, None))
    return transforms


def model_spec(
    classifier: str, hyperparameters: dict, transforms: list[str], class_weights: str, folds: int
) -> ModelSpec:
    """The validated specification, or an InputError naming what is wrong."""
    grid = hyperparameter_grid(classifier, hyperparameters)
    if class_weights not in CLASS_WEIGHTS:
        raise InputError(f"class weights {class_weights!r} are unknown; use none or balanced")
    if class_weights == "balanced" and not CLASSIFIERS[classifier].class_weights:
        raise InputError(f"{classifier} cannot weight classes in MLlib; use class_weights=none or another classifier")
    return ModelSpec(classifier, grid, parse_feature_transforms(transforms), class_weights, folds)


def check_transforms_fit(spec: ModelSpec, feature_dimension: int) -> None:
    for name, k in spec.transforms:
        if name == "pca" and k > feature_dimension:
            raise InputError(f"pca:{k} asks for more components than the {feature_dimension} features; "
                             f"use k <= {feature_dimension}")


def output_dimension(spec: ModelSpec, feature_dimension: int) -> int:
    return next((k for name, k in reversed(spec.transforms) if name == "pca"), feature_dimension)


def transform_stages(spec: ModelSpec):
    """(MLlib stages of the fitted transforms, the column the classifier reads)."""
    from pyspark.ml.feature import PCA, Normalizer, StandardScaler

    stages, column = [], FEATURE_VECTOR
    for position, (name, k) in enumerate(fitted_transforms(spec)):
        output = f"{FEATURE_VECTOR}_{position}_{name}"
        if name == "standard_scaler":
            stages.append(StandardScaler(inputCol=column, outputCol=output, withMean=True, withStd=True))
        elif name == "center":
            stages.append(StandardScaler(inputCol=column, outputCol=output, withMean=True, withStd=False))
        elif name == "normalizer":
            stages.append(Normalizer(inputCol=column, outputCol=output, p=2.0))
        else:
            stages.append(PCA(inputCol=column, outputCol=output, k=k))
        column = output
    return stages, column


def build_pipeline(spec: ModelSpec, indexer_model, feature_dimension: int):
    """(Pipeline, param maps): label indexing, the feature transformations, the classifier, and index-to-label, with
    one param map per grid point."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import (
        LinearSVC,
        LogisticRegression,
        MultilayerPerceptronClassifier,
        OneVsRest,
        RandomForestClassifier,
    )
    from pyspark.ml.feature import IndexToString

    labels = list(indexer_model.labels)
    feature_stages, features_column = transform_stages(spec)
    columns = {"featuresCol": features_column, "labelCol": LABEL_INDEX}
    weights = {"weightCol": WEIGHT_COLUMN} if spec.class_weights == "balanced" else {}

    def mllib_params(estimator, point: dict) -> dict:
        if spec.classifier == "mlp":
            widths = [output_dimension(spec, feature_dimension), *point["hidden_layers"], len(labels)]
            point = {**point, "hidden_layers": widths}
        return {estimator.getParam(HYPERPARAMETERS[name].mllib_name): value for name, value in point.items()}

    if spec.classifier == "logistic_regression":
        classifier = LogisticRegression(family="multinomial", **columns, **weights)
    elif spec.classifier == "random_forest":
        classifier = RandomForestClassifier(seed=spec.seed, **columns, **weights)
    elif spec.classifier == "mlp":
        classifier = MultilayerPerceptronClassifier(seed=spec.seed, **columns)
    else:
        classifier = LinearSVC(**columns, **weights)
    tuned = classifier  # the estimator the grid's values are params of
    if spec.classifier == "linear_svc":
        # LinearSVC is binary, and the label index holds one value more than the labels (the indexer keeps one for
        # labels training never saw), so even two labels are three classes to it: one binary model per label. The
        # grid's values are the inner classifier's params: one-vs-rest hands a param map on to its classifier when
        # copied, and would replace a classifier set through the map by a copy of its own.
        classifier = OneVsRest(classifier=tuned, **columns, **weights)
    param_maps = [mllib_params(tuned, point) for point in spec.grid]
    to_label = IndexToString(inputCol="prediction", outputCol=PREDICTED_LABEL, labels=labels)
    return Pipeline(stages=[indexer_model, *feature_stages, classifier, to_label]), param_maps
