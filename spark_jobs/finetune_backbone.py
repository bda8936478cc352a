"""Fine-tune the run's backbone on the lake's labelled images, distributed with Spark's TorchDistributor.

Images are split by their sha256 as train_classifier splits them: the backbone trains on the train split and is
selected and stopped early on the validation split; the test split is never seen. The result is a state dict of the
backbone without its head, with its sha256 and lineage, in <lake root>/finetuned/<backbone>-<hash of the inputs>/:
extract_features takes its path as --weights. The same inputs (images, base weights, transforms, hyperparameters)
find the finished result and reuse it; an interrupted fine-tune resumes from its last epoch's checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from imagepipe import cli, params, settings, storage, tables
from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.weights import resolve_weights
from imagepipe.finetune.artifact import WEIGHTS, finetuned_root, read_artifact
from imagepipe.finetune.config import FinetuneConfig, inputs_key
from imagepipe.lake import WINDOW_COLUMN, Lake
from imagepipe.preprocessing import parse_steps
from imagepipe.records import FinetuneRecord, WindowRecord
from imagepipe.training import check_class_counts, features_up_to, training_since_id, with_split
from imagepipe.windows import Window

log = logging.getLogger("finetune_backbone")
SPLITS = ("train", "validation")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("finetune_backbone", __doc__, "the run's ingest must have recorded its window")
    params.FINETUNE.add_to(parser)
    args = parser.parse_args(argv)
    try:  # what one field's schema cannot say: the step order, a backbone's input size and blocks
        args.spec = FeatureSpec(args.backbone, args.weights, args.image_size, parse_steps(args.preprocessing))
        args.config = FinetuneConfig(
            epochs=args.finetune_epochs, learning_rate=args.finetune_learning_rate,
            batch_size=args.finetune_batch_size, optimizer=args.finetune_optimizer, freeze=args.finetune_freeze,
            augmentation=tuple(args.finetune_augmentation), patience=args.finetune_patience,
            label_smoothing=args.finetune_label_smoothing)
        args.config.check_backbone(args.backbone)
    except ValueError as error:
        parser.error(str(error))
    return args


def split_images(spark, lake: Lake, window: Window, training_days: int | None):
    """The train and validation images (sha256, label, content, split, window) of every window that ended by the
    run's window end (the last training_days days of them, when given)."""
    from pyspark.sql import functions as F

    images = tables.read(spark, lake.images)
    if images is None:
        raise InputError(f"{lake.images.identifier} does not exist: ingest images before fine-tuning")
    selected = with_split(features_up_to(images, window.end_id, training_since_id(window, training_days)))
    return selected.filter(F.col("split").isin(*SPLITS)).select("sha256", "label", "content", "split", WINDOW_COLUMN)


def check_splits(pairs: dict[str, list[tuple[str, str]]], min_per_class: int) -> list[str]:
    """The labels the head is sized to (the training split's), or an InputError naming what is missing."""
    counts: dict[str, int] = {}
    for _, label in pairs["train"]:
        counts[label] = counts.get(label, 0) + 1
    check_class_counts(counts, min_per_class)
    if not any(label in counts for _, label in pairs["validation"]):
        raise InputError("fine-tuning needs validation images of the trained classes to choose its best epoch; "
                         "ingest more images")
    return sorted(counts)


def distributor_for(spark, processes: int):
    """TorchDistributor in local mode when Spark runs locally (processes on the driver), else across the cluster's
    tasks; on GPUs where Spark schedules them (the driver's in local mode, the tasks' on a cluster)."""
    from pyspark.ml.torch.distributor import TorchDistributor

    from imagepipe.spark import ship_py_files_to_worker_subprocesses

    local = spark.sparkContext.master.startswith("local")
    gpus = ("gpu" in spark.sparkContext.resources if local
            else float(spark.conf.get("spark.task.resource.gpu.amount", "0")) >= 1)
    if not local:
        ship_py_files_to_worker_subprocesses(spark)  # torchrun's processes on executors without the library
    return TorchDistributor(num_processes=processes, local_mode=local, use_gpu=gpus)


def main(argv: list[str] | None = None) -> None:
    from imagepipe.finetune.data import DATA_COLUMNS, split_key, stage_split
    from imagepipe.finetune.train import FinetuneJob, train_backbone
    from imagepipe.spark import get_spark

    args = parse_args(argv)
    started = time.monotonic()
    lake = Lake(args.lake_root)
    window = lake.read_record(args.run_id, WindowRecord).window
    base_weights = resolve_weights(args.spec)
    spark = get_spark("finetune_backbone")
    images = split_images(spark, lake, window, args.training_days).persist()
    rows = images.select("split", "sha256", "label", WINDOW_COLUMN).collect()
    pairs = {split: [(row["sha256"], row["label"]) for row in rows if row["split"] == split] for split in SPLITS}
    labels = check_splits(pairs, args.min_examples_per_class)
    key = inputs_key(args.backbone, base_weights.sha256, repr(args.spec.preprocessing()), args.spec.steps,
                     args.config, pairs)
    root = finetuned_root(lake.root, key)
    store = storage.open_store(root)
    document = read_artifact(store)
    reused = document is not None
    if reused:
        log.info("fine-tune %s is already finished (best validation accuracy %.4f); reusing it", key,
                 document["best_validation_accuracy"])
    else:
        for split in SPLITS:
            if not store.exists(split_key(split)):  # a restart finds its images staged
                stage_split(store, split, images.filter(images.split == split).select(*DATA_COLUMNS).toArrow())
        job = FinetuneJob(
            base=args.spec, target=dataclasses.replace(args.spec, weights=storage.join(root, WEIGHTS)),
            config=args.config, labels=tuple(labels), root=root,
            lineage={"inputs_key": key, "base_weights_sha256": base_weights.sha256,
                     "data_windows": sorted({row[WINDOW_COLUMN] for row in rows}),
                     "data_window_end": window.end.isoformat(), "training_days": args.training_days,
                     "images": {split: len(pairs[split]) for split in SPLITS}, "run_id": args.run_id,
                     "code_version": settings.code_version()})
        log.info("fine-tuning %s from %s on %d training and %d validation images of %d classes, %d process(es): %s",
                 args.backbone, args.weights, len(pairs["train"]), len(pairs["validation"]), len(labels),
                 args.finetune_processes, root)
        document = distributor_for(spark, args.finetune_processes).run(train_backbone, job)
    images.unpersist()
    lake.write_record(args.run_id, FinetuneRecord(
        backbone=args.backbone, weights=document["weights"], sha256=document["sha256"], reused=reused, inputs_key=key,
        best_validation_accuracy=document["best_validation_accuracy"], epochs_run=document["epochs_run"]))
    log.info("fine-tuned weights %s (validation accuracy %.4f after %d epochs) in %.1f s; extract features with "
             "--weights %s", key, document["best_validation_accuracy"], document["epochs_run"],
             time.monotonic() - started, document["weights"])


if __name__ == "__main__":
    cli.run(main)
