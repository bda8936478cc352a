"""A lake and a registry as pipeline runs leave them, written through the library's own code (its typed run records, the
registry's versions, promotion and rollback, the report's files and its gallery's thumbnails, the gate's verdict),
with a label named like a script and a quarantined key to match: what the UI's tests read.

    run 1 (scheduled__2026-11-20): version 1 passes, becomes champion
    run 2 (manual__2026-11-21...): version 2 fails its gate (accuracy under 0.8), not promoted; ingest rejected two
                                   objects and quarantined two with conflicting labels (a manual run, so a browser
                                   test can trigger a paused Airflow run of that id and open its tab)
    run 3 (manual__2026-11-22...): version 3 passes, becomes champion; then alice rolls back to version 1
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
from dataclasses import dataclass

from imagepipe import gallery, report, storage
from imagepipe.dev import sample_data
from imagepipe.gate import Thresholds, decide
from imagepipe.lake import Lake
from imagepipe.records import (
    CandidateRecord,
    FeaturesRecord,
    IngestRecord,
    PromotionRecord,
    RetrainRecord,
    WindowRecord,
)
from imagepipe.registry import Registry
from imagepipe.windows import Window, parse_timestamp

MODEL = "image_classifier"
HOSTILE = "<script>alert(1)</script>"
FOREST = "森林-forêt"  # a label in Chinese and French: text in tables, charts (a CJK font) and metadata
LABELS = ["beach", FOREST, HOSTILE]
FINGERPRINT = "resnet18-0123456789abcdef"
RUNS = ("scheduled__2026-11-20T00:00:00+00:00", "manual__2026-11-21T08:00:00+00:00",
        "manual__2026-11-22T10:15:30.123456+00:00")
WINDOWS = (("2026-11-19T00:00:00+00:00", "2026-11-20T00:00:00+00:00"),
           ("2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00"),
           ("2026-11-21T00:00:00+00:00", "2026-11-22T10:15:30.123456+00:00"))
# The sample scenes drawn for each label's thumbnails.
SCENES = dict(zip(LABELS, ["beach", "forest", "night_sky"], strict=True))
SHOWN_MISTAKES = 5  # of a version's misclassified test images, as if the gallery's cap were this
ROLLBACK_REASON = "version 3 mislabels <b>forest</b> at night"
QUARANTINED = [  # run 2's rejected objects: (key, reason)
    ("images/beach/broken.jpg", "undecodable: cannot identify image file"),
    (f"images/{HOSTILE}/tiny.png", "too small: 8x8 is under min_side 32"),
    ("images/beach/same.jpg", "conflicting labels: same content labelled beach, forest"),
    ("images/forest/same.jpg", "conflicting labels: same content labelled beach, forest"),
]


@dataclass(frozen=True)
class Records:
    lake: Lake
    registry: Registry

    def run(self, index: int) -> str:
        return RUNS[index - 1]


def _metrics(accuracy: float) -> dict:
    """A candidate's test metrics as evaluate_model writes them: 40 test images, per class and the matrix."""
    right = round(accuracy * 40)
    diagonal = [right // 3 + (1 if index < right % 3 else 0) for index in range(3)]
    counts = [[diagonal[row] if column == row else 0 for column in range(3)] for row in range(3)]
    counts[0][1] += 40 - right  # every error: a beach taken for a forest
    per_class = {label: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": sum(counts[i])}
                 for i, label in enumerate(LABELS)}
    return {"rows": 40, "accuracy": accuracy, "macro_f1": accuracy - 0.02, "weighted_f1": accuracy - 0.01,
            "per_class": per_class, "confusion_matrix": {"labels": LABELS, "counts": counts}, "log_loss": 0.4,
            "labels": LABELS}


def _example(rng: random.Random, label: str, predicted: str, probability: float) -> tuple[dict, bytes]:
    """A gallery example of a drawn test image of class `label`, and its thumbnail."""
    buffer = io.BytesIO()
    sample_data.draw_image(SCENES[label], rng).save(buffer, format="JPEG")
    sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    row = {"sha256": sha256, "label": label, "predicted": predicted, "probability": probability,
           "window_id": "w", "thumbnail": gallery.thumbnail_name(sha256)}
    return row, gallery.thumbnail(buffer.getvalue())


def _gallery(version: int, candidate: dict) -> tuple[dict, dict[str, bytes]]:
    """The gallery evaluate_model would choose: the mistakes (every one a beach taken for a forest) up to
    SHOWN_MISTAKES, and two correct images of each class."""
    rng = random.Random(version)
    mistakes = candidate["confusion_matrix"]["counts"][0][1]
    wrong = [_example(rng, "beach", FOREST, 0.9 - index / 100) for index in range(min(mistakes, SHOWN_MISTAKES))]
    right = [_example(rng, label, label, 0.95) for label in LABELS for _ in range(2)]
    document = {"thumbnail_side": gallery.THUMBNAIL_SIDE, "probabilities": True,
                "misclassified": [row for row, _ in wrong], "misclassified_total": mistakes,
                "correct": [row for row, _ in right], "correct_each": 2, "correct_classes": 3, "classes_tested": 3}
    return document, {row["thumbnail"]: thumbnail for row, thumbnail in wrong + right}


def many_classes(classes: int) -> tuple[dict, dict]:
    """A candidate's test metrics and gallery over `classes` classes, with names as long as folders give them, the
    gallery at its caps (every one of 900 mistakes is a class taken for the next)."""
    labels = [f"class_{index:03d}_with_a_rather_long_name_from_its_folder" for index in range(classes)]
    per_class = {label: {"precision": 0.5 + index / (2 * classes), "recall": 0.9, "f1": 0.4 + index / (2 * classes),
                         "support": 5} for index, label in enumerate(labels)}
    counts = [[5 if row == column else 0 for column in range(classes)] for row in range(classes)]
    candidate = {"rows": 5 * classes, "accuracy": 0.9, "macro_f1": 0.88, "weighted_f1": 0.89, "log_loss": 0.3,
                 "per_class": per_class, "confusion_matrix": {"labels": labels, "counts": counts}}

    def example(kind: str, index: int, predicted: str) -> dict:
        sha256 = hashlib.sha256(f"{kind}{index}".encode()).hexdigest()
        return {"sha256": sha256, "label": labels[index], "predicted": predicted, "probability": 0.8,
                "window_id": "w", "thumbnail": gallery.thumbnail_name(sha256)}

    shown = {"thumbnail_side": gallery.THUMBNAIL_SIDE, "probabilities": True, "misclassified_total": 900,
             "misclassified": [example("m", index, labels[index + 1]) for index in range(gallery.MAX_MISCLASSIFIED)],
             "correct": [example("c", index, labels[index]) for index in range(gallery.MAX_CORRECT)],
             "correct_each": 1, "correct_classes": gallery.MAX_CORRECT, "classes_tested": classes}
    return candidate, shown


def _train_version(registry: Registry, run_id: str, accuracy: float, dag_id: str) -> int:
    """What train_classifier and evaluate_model write into a new version (the Spark model aside)."""
    version = registry.allocate_version(run_id)
    rows = {"train": {label: 100 + index for index, label in enumerate(LABELS)},
            "validation": {label: 12 for label in LABELS}, "test": dict(zip(LABELS, [14, 13, 13], strict=True))}
    metadata = {"version": version, "model_name": registry.model_name, "labels": LABELS, "fingerprint": FINGERPRINT,
                "preprocessing": ["exif_transpose"], "model": {"classifier": "logistic_regression"},
                "hyperparameters": {"reg_param": 0.01}, "rows": rows, "run_id": run_id, "dag_id": dag_id,
                "backbone": {"backbone": "timm:tf_efficientnet_lite0", "library": "timm 1.0.31",
                             "weights": "/weights/lite0_ünïcödé-标签.pth", "weights_kind": "pretrained",
                             "weights_sha256": "1433548bb6ec3a48e5f5fcaea2c3801070594b29", "image_size": 224}}
    registry.write_document(version, "metadata", metadata)
    champion_version = registry.champion_version()
    champion = None if champion_version is None else {
        **registry.document(champion_version, "metrics")["candidate"], "version": champion_version}
    candidate = _metrics(accuracy)
    examples, thumbnails = _gallery(version, candidate)
    registry.write_files(version, thumbnails)
    registry.write_document(version, "metrics", {"candidate": candidate, "champion": champion,
                                                 "champion_version": champion_version, "gallery": examples})
    verdict = dataclasses.replace(decide(candidate, champion, Thresholds()), candidate_version=version,
                                  champion_version=champion_version, run_id=run_id)
    registry.write_files(version, report.files(metadata, candidate, champion, verdict, examples))
    registry.write_verdict(version, verdict)
    return version


RETRAIN_REASON = ("120 new images since champion version 1's training, 100.0% of the 120 it was trained on, reach "
                  "retrain_min_new_share=0.05")


def _record_run(lake: Lake, registry: Registry, index: int, version: int, promoted: bool) -> None:
    run_id = RUNS[index]
    window = Window(*(parse_timestamp(text) for text in WINDOWS[index]))
    lake.write_record(run_id, WindowRecord.of(window, run_id, {}))
    rejected = {"undecodable": 1, "too small": 1} if index == 1 else {}
    lake.write_record(run_id, IngestRecord(
        source_uri="s3://imagepipe-samples/images/", window=window.to_json(), listed=130, outside_window=0,
        unlabeled=3, fetched=127, bytes=127 * 2048, ingested=120, duplicates=5 - (2 if index == 1 else 0),
        conflicts=2 if index == 1 else 0, rejected=rejected, labels={label: 40 for label in LABELS},
        images_snapshot=index + 1, seconds=2.5, objects_per_s=50.8,
        quarantined=[{"key": key, "reason": reason} for key, reason in sorted(QUARANTINED)] if index == 1 else []))
    lake.write_record(run_id, FeaturesRecord(FINGERPRINT, ["exif_transpose"], None, [window.id], 120, 0, 0))
    if index == 1:  # a run that asked for retrain_min_new_share
        lake.write_record(run_id, RetrainRecord(True, RETRAIN_REASON))
    lake.write_record(run_id, CandidateRecord(version, registry.model_name))
    if promoted:
        previous = registry.champion_version()
        changed = registry.promote(version, previous, run_id, "verdict passed")
        lake.write_record(run_id, PromotionRecord(version, changed, previous=previous))


def build(lake_root: str, registry_uri: str | None = None, dataset: str | None = None) -> Records:
    """Three runs of the default dataset, or of the named one (its lake folder, its model in the same registry)."""
    lake = Lake(storage.join(lake_root, "datasets", dataset) if dataset else lake_root)
    registry = Registry(registry_uri or Lake(lake_root).registry, dataset or MODEL)
    dag_id = f"image_classifier_pipeline__{dataset}" if dataset else "image_classifier_pipeline"
    for index, (accuracy, promoted) in enumerate([(0.9, True), (0.6, False), (0.95, True)]):
        version = _train_version(registry, RUNS[index], accuracy, dag_id)
        _record_run(lake, registry, index, version, promoted)
    registry.rollback(ROLLBACK_REASON, to=1, user="alice")
    return Records(lake, registry)


def build_first_champion_only(lake_root: str) -> Records:
    """One run of the default dataset whose version became the first champion: no former champion to roll back to."""
    lake, registry = Lake(lake_root), Registry(Lake(lake_root).registry, MODEL)
    version = _train_version(registry, RUNS[0], 0.9, "image_classifier_pipeline")
    _record_run(lake, registry, 0, version, True)
    return Records(lake, registry)


def add_refused_candidate(records: Records) -> int:
    """A newer run whose candidate failed its gate (accuracy 0.6 against the champion's): not promoted."""
    version = _train_version(records.registry, RUNS[1], 0.6, "image_classifier_pipeline")
    _record_run(records.lake, records.registry, 1, version, False)
    return version


# Scoring runs of the champion as batch scoring leaves them in the drift table: three quiet, then one whose batch
# drifted in its class mix and features, then one with too few images to judge.
DRIFT_RUNS = [  # (run id, scored at, class mix, top probability, features, skipped)
    ("scoring__1", "2026-11-23T08:00:00+00:00", 0.02, 0.03, 0.05, None),
    ("scoring__2", "2026-11-24T08:00:00+00:00", 0.04, 0.02, 0.07, None),
    ("scoring__3", "2026-11-25T08:00:00+00:00", 0.03, 0.05, 0.04, None),
    ("scoring__4", "2026-11-26T08:00:00+00:00", 0.61, 0.12, 1.87, None),
    ("scoring__5", "2026-11-27T08:00:00+00:00", None, None, None, "12 images scored, fewer than the 100 a drift "
                                                                  "verdict needs (drift_min_images)"),
]
DRIFT_THRESHOLD = 0.25


def add_drift_runs(records: Records) -> None:
    """The champion's drift table (imagepipe.drift.TABLE_SCHEMA's columns), written through pyiceberg into the
    lake's catalog: the UI reads it as it reads one Spark wrote."""
    import pyarrow as pa

    from imagepipe import tables
    from imagepipe.drift import CHECKS

    rows = []
    for run_id, scored_at, *values, skipped in DRIFT_RUNS:
        row = {"run_id": run_id, "model_name": MODEL, "model_version": 1, "images": 12 if skipped else 150}
        for name, value in zip(CHECKS, values, strict=True):
            judged = value is not None
            row |= {name: value, f"{name}_threshold": DRIFT_THRESHOLD if judged else None,
                    f"{name}_alarm": judged and value > DRIFT_THRESHOLD if judged else None}
        row |= {"feature_component_psi": [] if skipped else [values[2], 0.1], "skipped": skipped,
                "alarm": any(row[f"{name}_alarm"] for name in CHECKS), "scored_at": parse_timestamp(scored_at)}
        rows.append(row)
    frame = pa.Table.from_pylist(rows, schema=pa.schema([
        ("run_id", pa.string()), ("model_name", pa.string()), ("model_version", pa.int32()), ("images", pa.int32()),
        *((column, kind) for name in CHECKS for column, kind in (
            (name, pa.float64()), (f"{name}_threshold", pa.float64()), (f"{name}_alarm", pa.bool_()))),
        ("feature_component_psi", pa.list_(pa.float64())), ("skipped", pa.string()), ("alarm", pa.bool_()),
        ("scored_at", pa.timestamp("us", tz="UTC"))]))
    table = records.lake.drift(MODEL)
    catalog = tables.python_catalog()
    catalog.create_namespace_if_not_exists(table.namespace)
    catalog.create_table((table.namespace, table.name), schema=frame.schema, location=table.location).append(frame)
