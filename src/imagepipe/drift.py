"""Drift of what a champion sees in batch scoring from what it was trained and tested on, as population stability
indices (PSI, sum over bins of (batch - reference) * ln(batch / reference) of their proportions) against a reference
stored with each model version (the registry document drift_reference, written by train_classifier):

- class mix: the model's predicted-label proportions on its held-out images, the validation and test splits (never
  fitted on, so they look to the model as new images do; both splits, for twice the rows of the test split alone);
- top probability: the chosen label's probability on the same images, as proportions over 5 equal bins of [0, 1];
  absent for a model without probabilities (linear_svc);
- features: the train split's first principal components (MLlib PCA, at most COMPONENTS), stored as the projection
  matrix with, per component, the train split's quintile edges (approxQuantile) and proportions in those bins.

Features are summarised by a projection and quantiles rather than a stored sample of rows (for a domain classifier):
the reference holds aggregates only, so an image forgotten from the lake leaves nothing of itself in it, and scoring
is a map and one aggregate over the batch, which scales with it. The projection is not centred: the reference and the
batch are projected alike and binned by edges of the same projection, so the constant offset moves no row's bin.

Bins are few on purpose: PSI over B bins between samples of n and m images is about (B - 1) * (1/n + 1/m) by chance
alone, so 5 bins keep a 100-image batch of unchanged images near 0.05, well under the usual 0.25 alarm, where deciles
would sit near 0.1 and alarm by chance on one of five components. For the same reason fewer images than
Thresholds.min_images get no verdict. An empty bin counts as EPSILON (1e-4), keeping PSI finite: a bin the
reference never filled that holds 10% of a batch adds 0.1 * ln(0.1 / 1e-4), about 0.69.

Everything over rows runs in Spark (aggregates, approxQuantile, PCA); only those aggregates reach the driver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from imagepipe.errors import InputError

FORMAT = 1
EPSILON = 1e-4
PROBABILITY_EDGES = (0.2, 0.4, 0.6, 0.8)
FEATURE_QUANTILES = (0.2, 0.4, 0.6, 0.8)
QUANTILE_ERROR = 0.001  # approxQuantile's relative error: exact enough for 5 bins, one pass instead of a sort
COMPONENTS = 5
# The components come from at most this many train images (a fixed sample by image hash): the covariance costs rows
# x width^2 (1,280^2 for EfficientNet-Lite0), and five components of 10,000 images are as good as of a million.
COMPONENT_SAMPLE = 10_000
CLASS_MIX, TOP_PROBABILITY, FEATURES = "class_mix_psi", "top_probability_psi", "feature_psi_max"
CHECKS = (CLASS_MIX, TOP_PROBABILITY, FEATURES)
NO_REFERENCE = ("version {version} has no drift reference (trained before drift monitoring); a version trained "
                "now stores one")


def psi(reference: Sequence[float], batch: Sequence[float]) -> float:
    """The population stability index of a batch's bin proportions against the reference's, bin by bin."""
    if len(reference) != len(batch):
        raise ValueError(f"PSI compares the same bins: {len(reference)} reference bins, {len(batch)} batch bins")
    return sum((b - r) * math.log(b / r)
               for r, b in ((max(r, EPSILON), max(b, EPSILON)) for r, b in zip(reference, batch, strict=True)))


def proportions(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(count / total if total else 0.0 for count in counts)


@dataclass(frozen=True)
class Thresholds:
    """PSI above which each check alarms, and the fewest scored images that get a verdict."""

    class_mix: float = 0.25
    top_probability: float = 0.25
    features: float = 0.25
    min_images: int = 100


@dataclass(frozen=True)
class Reference:
    """What a version saw: see the module doc. components: one row of feature weights per principal component;
    feature_edges and feature_proportions: each component's inner bin edges and the train split's proportions."""

    labels: tuple[str, ...]
    class_mix: tuple[float, ...]
    top_probability: tuple[float, ...] | None
    components: tuple[tuple[float, ...], ...]
    feature_edges: tuple[tuple[float, ...], ...]
    feature_proportions: tuple[tuple[float, ...], ...]
    heldout_images: int
    train_images: int

    def to_json(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, document: dict) -> Reference:
        fields = _read(document, "drift reference", cls.__dataclass_fields__)
        return cls(**{name: _tuples(value) for name, value in fields.items()})


@dataclass(frozen=True)
class DriftCheck:
    name: str
    value: float
    threshold: float
    alarm: bool


@dataclass(frozen=True)
class DriftReport:
    """A scoring run's drift verdict against the champion's reference; skipped says why there is none."""

    reference_version: int
    images: int
    checks: tuple[DriftCheck, ...] = ()
    feature_components: tuple[float, ...] = ()  # each component's PSI, the largest being the features check
    skipped: str | None = None

    @property
    def alarm(self) -> bool:
        return any(check.alarm for check in self.checks)

    def to_json(self) -> dict:
        return {"format": FORMAT, **asdict(self), "alarm": self.alarm}

    @classmethod
    def from_json(cls, document: dict) -> DriftReport:
        fields = _read(document, "drift report", cls.__dataclass_fields__)
        try:
            checks = tuple(DriftCheck(**check) for check in fields["checks"])
        except TypeError as error:
            raise InputError(f"drift report has a malformed check ({error}); write it with this version of imagepipe"
                             ) from None
        return cls(**{**fields, "checks": checks, "feature_components": tuple(fields["feature_components"])})


def _read(document: dict, kind: str, names) -> dict:
    """The named fields of a versioned record, refusing another format or a missing field in one line."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise InputError(f"{kind} has format {found!r}, not {FORMAT}; write it with this version of imagepipe")
    missing = sorted(set(names) - set(document))
    if missing:
        raise InputError(f"{kind} lacks {', '.join(missing)}; write it with this version of imagepipe")
    return {name: document[name] for name in names}


def _tuples(value):
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def explain(report: DriftReport) -> list[str]:
    """One line per check (or the reason there is no verdict), for logs and notifications."""
    if report.skipped is not None:
        return [f"drift not judged: {report.skipped}"]
    lines = []
    for check in report.checks:
        verdict = f"> {check.threshold:.2f}: alarm" if check.alarm else f"<= {check.threshold:.2f}: ok"
        detail = (f" (components {', '.join(f'{value:.2f}' for value in report.feature_components)})"
                  if check.name == FEATURES else "")
        lines.append(f"{check.name} {check.value:.2f} {verdict}{detail}")
    return lines


# --- Spark ----------------------------------------------------------------------------------------------------------

def _bin(column, edges: Sequence[float]):
    """The index of the bin a value falls in, between inner edges (a value on an edge goes to the upper bin)."""
    from pyspark.sql import functions as F

    return sum((F.when(column >= edge, 1).otherwise(0) for edge in edges), F.lit(0))


def _prediction_counts(predictions, labels: Sequence[str]) -> tuple[list[int], list[int] | None, int]:
    """(count per label, count per top-probability bin or None without probabilities, images), in one pass over
    (predicted_label, probability) rows."""
    from pyspark.sql import functions as F

    from imagepipe.classifiers import PREDICTED_LABEL

    probability_bin = _bin(F.col("probability"), PROBABILITY_EDGES)
    row = predictions.agg(
        F.count(F.lit(1)).alias("images"), F.count("probability").alias("with_probability"),
        *(F.count(F.when(F.col(PREDICTED_LABEL) == label, True)).alias(f"label{i}") for i, label in enumerate(labels)),
        *(F.count(F.when(probability_bin == b, True)).alias(f"bin{b}") for b in range(len(PROBABILITY_EDGES) + 1)),
    ).first()
    mix = [row[f"label{i}"] for i in range(len(labels))]
    bins = [row[f"bin{b}"] for b in range(len(PROBABILITY_EDGES) + 1)] if row["with_probability"] else None
    return mix, bins, row["images"]


def project(features, components: Sequence[Sequence[float]]):
    """(pc1, pc2, ...) of each row's `features` array: its dot product with each component's weights, joined to the
    rows as one broadcast row (a map, whatever the batch's size)."""
    from pyspark.sql import functions as F

    from imagepipe.featurizer import FEATURES_COLUMN

    names = [f"w{i}" for i in range(len(components))]
    weights = features.sparkSession.createDataFrame(
        [tuple(list(component) for component in components)], ", ".join(f"{name} array<double>" for name in names))
    return features.select(FEATURES_COLUMN).crossJoin(F.broadcast(weights)).select(*(
        F.aggregate(F.zip_with(FEATURES_COLUMN, name, lambda x, w: x * w), F.lit(0.0), lambda total, v: total + v)
        .alias(f"pc{i + 1}") for i, name in enumerate(names)))


def _component_counts(projected, edges: Sequence[Sequence[float]]) -> list[list[int]]:
    """Rows per bin of each component, in one pass."""
    from pyspark.sql import functions as F

    row = projected.agg(*(
        F.count(F.when(_bin(F.col(f"pc{i + 1}"), component_edges) == b, True)).alias(f"c{i}b{b}")
        for i, component_edges in enumerate(edges) for b in range(len(component_edges) + 1))).first()
    return [[row[f"c{i}b{b}"] for b in range(len(component_edges) + 1)] for i, component_edges in enumerate(edges)]


def component_sample(train, most: int):
    """About `most` of the train rows, the same ones in every run: an image is in when bits of its sha256 that the
    split and the folds do not use fall below most / rows."""
    from pyspark.sql import functions as F

    rows = train.count()
    if rows <= most:
        return train
    return train.filter(F.conv(F.substring("sha256", 17, 8), 16, 10).cast("long") < F.lit(most * 2**32 // rows))


def reference(model, features, labels: Sequence[str], dimension: int) -> Reference:
    """The reference of a model fitted on `features`' train split (split_features' rows of `dimension`-wide
    features): its predictions on the validation and test splits, the train split's principal components and their
    quintiles."""
    from pyspark.ml.feature import PCA
    from pyspark.sql import functions as F

    from imagepipe.classifiers import FEATURE_VECTOR
    from imagepipe.scoring import predict
    from imagepipe.training import as_vectors

    heldout = predict(model, features.filter(F.col("split").isin("validation", "test")))
    mix, probability_bins, heldout_images = _prediction_counts(heldout, labels)
    train = as_vectors(features.filter("split = 'train'"))
    fitted = PCA(k=min(COMPONENTS, dimension), inputCol=FEATURE_VECTOR, outputCol="projection").fit(
        component_sample(train, COMPONENT_SAMPLE))
    components = tuple(tuple(float(weight) for weight in column) for column in fitted.pc.toArray().T)
    projected = project(train, components).persist()
    names = [f"pc{i + 1}" for i in range(len(components))]
    edges = tuple(tuple(component) for component in
                  projected.approxQuantile(names, list(FEATURE_QUANTILES), QUANTILE_ERROR))
    counts = _component_counts(projected, edges)
    projected.unpersist()
    return Reference(
        labels=tuple(labels), class_mix=proportions(mix),
        top_probability=None if probability_bins is None else proportions(probability_bins),
        components=components, feature_edges=edges,
        feature_proportions=tuple(proportions(component) for component in counts),
        heldout_images=heldout_images, train_images=sum(counts[0]))


def compare(reference: Reference | None, version: int, predictions, features, thresholds: Thresholds) -> DriftReport:
    """The batch's drift from version's reference: `predictions` are (predicted_label, probability) and `features`
    the feature arrays of the same distinct scored images."""
    mix, probability_bins, images = _prediction_counts(predictions, () if reference is None else reference.labels)
    if reference is None:
        return DriftReport(version, images, skipped=NO_REFERENCE.format(version=version))
    if images < thresholds.min_images:
        return DriftReport(version, images, skipped=f"{images} images scored, fewer than the {thresholds.min_images} "
                                                    "a drift verdict needs (drift_min_images)")
    components = tuple(psi(expected, proportions(counts)) for expected, counts in zip(
        reference.feature_proportions, _component_counts(project(features, reference.components),
                                                         reference.feature_edges), strict=True))
    figures = [(CLASS_MIX, psi(reference.class_mix, proportions(mix)), thresholds.class_mix)]
    if reference.top_probability is not None and probability_bins is not None:
        figures.append((TOP_PROBABILITY, psi(reference.top_probability, proportions(probability_bins)),
                        thresholds.top_probability))
    figures.append((FEATURES, max(components), thresholds.features))
    checks = tuple(DriftCheck(name, round(value, 6), threshold, value > threshold)
                   for name, value, threshold in figures)
    return DriftReport(version, images, checks, tuple(round(value, 6) for value in components))


TABLE_SCHEMA = ", ".join([
    "run_id string", "model_name string", "model_version int", "images int",
    *(f"{name} double, {name}_threshold double, {name}_alarm boolean" for name in CHECKS),
    "feature_component_psi array<double>", "alarm boolean", "skipped string", "scored_at timestamp"])


def table_row(spark, report: DriftReport, run_id: str, model_name: str, scored_at):
    """The run's one row of the model's drift table (TABLE_SCHEMA): a check the run did not make is null."""
    checks = {check.name: check for check in report.checks}
    figures = [field for name in CHECKS for field in (
        (checks[name].value, checks[name].threshold, checks[name].alarm) if name in checks else (None, None, None))]
    return spark.createDataFrame(
        [(run_id, model_name, report.reference_version, report.images, *figures, list(report.feature_components),
          report.alarm, report.skipped, scored_at)], TABLE_SCHEMA)
