"""Extract CNN features of the lake's images with a frozen torchvision backbone.

Features are stored per feature space (fingerprint of backbone, weights, image preprocessing steps, the backbone's
own transforms and input size). The run's window is always recomputed and any image partition the space lacks is
filled in, each written by overwriting its own partition, so a re-run gives the same table.

With --finetune on, the weights are those the run's finetune_backbone wrote (its finetune record), not --weights:
fine-tuned features get a feature space of their own.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from imagepipe import cli, params, storage, tables
from imagepipe.errors import InputError
from imagepipe.features import (
    backbone_record,
    extract_features,
    split_failures,
    split_reusable,
    windows_to_featurize,
)
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.weights import resolve_weights
from imagepipe.lake import WINDOW_COLUMN, Lake, Table
from imagepipe.preprocessing import parse_steps
from imagepipe.records import FeaturesRecord, FinetuneRecord, WindowRecord
from imagepipe.spark import get_spark

log = logging.getLogger("extract_features")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("extract_features", __doc__, "the run's ingest must have recorded its window")
    params.EXTRACT.add_to(parser)
    args = parser.parse_args(argv)
    try:  # what one field's schema cannot say: the step order, a backbone's fixed input size
        args.spec = FeatureSpec(args.backbone, args.weights, args.image_size, parse_steps(args.preprocessing))
    except ValueError as error:
        parser.error(str(error))
    return args


def finetuned(spec: FeatureSpec, lake: Lake, run_id: str) -> FeatureSpec:
    """The spec with the weights the run's finetune_backbone wrote in place of the weights param: with finetune on,
    features come from the fine-tuned backbone or not at all, never silently from the base weights."""
    record = lake.find_record(run_id, FinetuneRecord)
    if record is None:
        raise InputError(f"finetune is on but run {run_id} has no finetune record in {lake.root}: run "
                         "finetune_backbone for this run first, or extract with finetune off")
    if record.backbone not in (None, spec.backbone):  # records of older runs do not name it
        raise InputError(f"run {run_id} fine-tuned a {record.backbone}, not the {spec.backbone} extract_features "
                         f"was given: extract with --backbone {record.backbone}, as the run's finetune_backbone did")
    log.info("finetune is on: extracting with the run's fine-tuned weights %s (fine-tuned from %s)",
             record.weights, spec.weights)
    return dataclasses.replace(spec, weights=record.weights)


def partition_values(frame) -> set[str]:
    if frame is None:
        return set()
    return {row[WINDOW_COLUMN] for row in frame.select(WINDOW_COLUMN).distinct().collect()}


def read_current(spark, table: Table):
    """The table's rows as of its current snapshot, pinned: every read of this run sees the same commit."""
    return tables.read(spark, table, tables.current_snapshot(spark, table))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    lake = Lake(args.lake_root)
    run_window = lake.read_record(args.run_id, WindowRecord).id
    if args.finetune:
        args.spec = finetuned(args.spec, lake, args.run_id)
    weights = resolve_weights(args.spec)
    fingerprint = args.spec.fingerprint(weights)
    # One Arrow batch is one forward pass: 64 images at 224x224 is ~40 MB of input tensors, small enough for a CPU
    # worker's memory, large enough to keep the backbone's matrix work efficient.
    spark = get_spark("extract_features", {"spark.sql.execution.arrow.maxRecordsPerBatch": str(args.batch_size)})
    features_table = lake.features(fingerprint)
    all_images, stored = read_current(spark, lake.images), read_current(spark, features_table)
    todo = windows_to_featurize(partition_values(all_images), partition_values(stored), run_window)
    log.info("feature space %s: computing windows %s", fingerprint, todo)
    rows, reused_rows, failures = 0, 0, 0
    if todo:
        images = all_images.filter(window_in(WINDOW_COLUMN, todo))
        if stored is not None:
            stored = stored.filter(window_in(WINDOW_COLUMN, todo))
        images, reused = split_reusable(images, stored)
        images = images.repartition(spark.sparkContext.defaultParallelism * 2)
        # Each task runs torch with spark.task.cpus threads, so concurrent tasks never oversubscribe the cores.
        threads = int(spark.conf.get("spark.task.cpus", "1"))
        extracted = extract_features(images, args.spec, fingerprint, threads).persist()
        features, failed = split_failures(extracted)
        table = features if reused is None else features.unionByName(reused)
        tables.overwrite_partitions(table, features_table, WINDOW_COLUMN)
        tables.overwrite_partitions(failed, lake.feature_errors(fingerprint), WINDOW_COLUMN)
        rows, failures = features.count(), failed.count()
        reused_rows = 0 if reused is None else reused.count()
        extracted.unpersist()
    backbone = backbone_record(args.spec, weights, lake, args.finetune)
    storage.write_json(
        lake.feature_space_document(fingerprint),
        {"fingerprint": fingerprint, **backbone, "preprocessing": list(args.spec.steps),
         "backbone_transforms": repr(args.spec.preprocessing())},
    )
    lake.write_record(args.run_id, FeaturesRecord(fingerprint, list(args.spec.steps), backbone, todo, rows, reused_rows,
                                                  failures))
    seconds = time.monotonic() - started
    log.info("computed %d feature rows in %.1f s (%.1f images/s) and kept %d already computed in %s; %d images "
             "could not be decoded", rows, seconds, (rows + failures) / seconds, reused_rows,
             features_table.identifier, failures)


def window_in(column: str, values: list[str]):
    from pyspark.sql import functions as F

    return F.col(column).isin(values)


if __name__ == "__main__":
    cli.run(main)
