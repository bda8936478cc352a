"""Train a new model version on every labelled image ingested up to the run's window end.

Rows come from the run's feature space and are split by image hash (80/10/10 train/validation/test); the model is
fitted on the train split only (a hyperparameter grid is searched with cross-validation inside it) and scored on the
validation split for the record. The model is a Spark PipelineModel that maps feature arrays to label strings, saved
as a new immutable registry version with its lineage (each lake table's snapshot it read); a retry of the same run
reuses the version it already wrote. With --train-as-of-version N it reads exactly version N's rows instead.
Beside the metadata it stores the version's drift reference (imagepipe.drift), which batch scoring compares with.
"""

from __future__ import annotations

import logging
import os
import time

from imagepipe import cli, drift, params, settings, tables
from imagepipe.classifiers import check_transforms_fit, model_spec
from imagepipe.evaluation import classification_metrics, score
from imagepipe.features import stored_backbone
from imagepipe.lake import WINDOW_COLUMN, Lake
from imagepipe.records import CandidateRecord, FeaturesRecord, WindowRecord
from imagepipe.registry import open_registry
from imagepipe.spark import get_spark
from imagepipe.training import (
    balanced_weights,
    check_class_counts,
    fit_classifier,
    model_labels,
    read_now,
    read_of_version,
    split_features,
    spread,
    training_since_id,
    with_class_weights,
)

log = logging.getLogger("train_classifier")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("train_classifier", __doc__, "the run's features must be extracted")
    cli.add_model_name(parser)
    params.TRAIN.add_to(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from pyspark.sql import functions as F

    args = parse_args(argv)
    spec = model_spec(args.classifier, args.hyperparameters, args.feature_transforms, args.class_weights,
                      args.selection_folds)
    lake = Lake(args.lake_root)
    registry = open_registry(args.model_name, args.registry_uri, args.lake_root)
    window = lake.read_record(args.run_id, WindowRecord).window

    done = registry.version_for_run(args.run_id)
    if done is not None and registry.document(done, "metadata") is not None:
        log.info("run %s already trained version %d; keeping it", args.run_id, done)
        lake.write_record(args.run_id, CandidateRecord(done, args.model_name))
        return

    spark = get_spark("train_classifier")
    # Every read of this run sees one snapshot of each table, which the version's metadata records (its lineage).
    if args.train_as_of_version is None:
        read = read_now(spark, lake, window, lake.read_record(args.run_id, FeaturesRecord), args.training_days)
    else:
        read = read_of_version(lake, registry.metadata(args.train_as_of_version))
        log.info("training on version %d's rows: %s", args.train_as_of_version, read.recorded())
    fingerprint = read.fingerprint
    since_id = training_since_id(read.window, read.training_days)
    features = spread(split_features(spark, lake, fingerprint, read.window.end_id, since_id,
                                     read.snapshots[lake.features(fingerprint)]),
                      spark.sparkContext.defaultParallelism).persist()
    counts = {
        (row["split"], row["label"]): row["count"] for row in features.groupBy("split", "label").count().collect()
    }
    train_counts = {label: n for (split, label), n in counts.items() if split == "train"}
    check_class_counts(train_counts, args.min_examples_per_class)
    dimension = features.select(F.size("features").alias("n")).first()["n"]
    check_transforms_fit(spec, dimension)

    train = features.filter("split = 'train'")
    if spec.class_weights == "balanced":
        train = with_class_weights(train, balanced_weights(train_counts))
    version = registry.allocate_version(args.run_id)
    log.info("training %s version %d: %s on %d training rows of %s, grid of %d point(s)", args.model_name, version,
             spec.classifier, sum(train_counts.values()), fingerprint, len(spec.grid))
    started = time.monotonic()
    model, chosen, selection = fit_classifier(train, spec, dimension)
    seconds = round(time.monotonic() - started, 3)
    for result in selection:
        log.info("cross-validated weighted F1 %.4f for %s", result["weighted_f1"], result["hyperparameters"])
    labels = model_labels(model)
    validation = classification_metrics(score(model, features.filter("split = 'validation'")), labels)
    windows = sorted(row[WINDOW_COLUMN] for row in features.select(WINDOW_COLUMN).distinct().collect())
    images = tables.read(spark, lake.images, read.snapshots[lake.images])
    ingest_runs = (images.filter(F.col(WINDOW_COLUMN).isin(windows))
                   .select(WINDOW_COLUMN, "run_id").distinct().collect())
    registry.save_model(version, model)
    # Before the metadata that seals the version; an interrupted attempt's reference is kept (a recorded file never
    # changes, and a recomputed one may differ in its last digits).
    if registry.document(version, "drift_reference") is None:
        reference = drift.reference(model, features, labels, dimension)
        registry.write_document(version, "drift_reference", reference.to_json())
        log.info("drift reference of version %d: %d held-out and %d training images, %d feature components",
                 version, reference.heldout_images, reference.train_images, len(reference.components))
    registry.write_document(
        version,
        "metadata",
        {
            "version": version,
            "model_name": args.model_name,
            "labels": labels,
            "fingerprint": fingerprint,
            "preprocessing": read.preprocessing,
            "backbone": stored_backbone(lake, fingerprint),
            "feature_dimension": dimension,
            "model": spec.to_json(),
            "hyperparameters": chosen,
            "selection": selection,
            "validation": {metric: validation[metric] for metric in ("rows", "accuracy", "macro_f1", "weighted_f1")},
            "rows": {split: {label: n for (s, label), n in sorted(counts.items()) if s == split}
                     for split in sorted({s for s, _ in counts})},
            "data_window_end": read.window_end,
            "training_days": read.training_days,
            "data_windows": [{"window": row[WINDOW_COLUMN], "ingest_run": row["run_id"],
                              "ingest_report": lake.run_document(row["run_id"], "ingest")}
                             for row in sorted(ingest_runs, key=lambda row: row[WINDOW_COLUMN])],
            "snapshots": read.recorded(),
            "as_of_version": args.train_as_of_version,
            "run_id": args.run_id,
            "dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID"),
            "spark_application_id": spark.sparkContext.applicationId,
            "code_version": settings.code_version(),
            "training_seconds": seconds,
        },
    )
    lake.write_record(args.run_id, CandidateRecord(version, args.model_name))
    log.info("trained %s version %d (%s %s) in %.1f s; validation accuracy %.4f on %d images", args.model_name,
             version, spec.classifier, chosen, seconds, validation["accuracy"] or 0.0, validation["rows"])


if __name__ == "__main__":
    cli.run(main)
