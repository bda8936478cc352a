"""Train a new model version on every labelled image ingested up to the run's window end.

Rows come from the run's feature space and are split by image hash (80/10/10 train/validation/test); training uses
the train split only. The model is a Spark PipelineModel that maps feature arrays to label strings, saved as a new
immutable registry version; a retry of the same run reuses the version it already wrote.
"""

from __future__ import annotations

import logging
import os
import time

from imagepipe import cli, settings, storage
from imagepipe.lake import Lake
from imagepipe.spark import get_spark
from imagepipe.training import (
    check_class_counts,
    check_one_feature_space,
    features_up_to,
    fit_classifier,
    model_labels,
    with_split,
)
from imagepipe.windows import Window

log = logging.getLogger("train_classifier")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("train_classifier", __doc__, "the run's features must be extracted")
    cli.add_model_name(parser)
    parser.add_argument("--reg-param", type=cli.checked(float, "a number"), default=0.01, help="L2 regularisation")
    parser.add_argument("--max-iter", type=cli.POSITIVE_INT, default=100)
    parser.add_argument(
        "--min-examples-per-class", type=cli.POSITIVE_INT, default=5,
        help="refuse to train when a class has fewer training images (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.reg_param < 0:
        parser.error(f"argument --reg-param: {args.reg_param} is negative; use 0 or more")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    lake = Lake(args.lake_root)
    registry = cli.open_registry(args)
    window = Window.from_json(lake.read_run(args.run_id, "window"))
    fingerprint = lake.read_run(args.run_id, "features")["fingerprint"]

    done = registry.version_for_run(args.run_id)
    if done is not None and registry.document(done, "metadata") is not None:
        log.info("run %s already trained version %d; keeping it", args.run_id, done)
        lake.write_run(args.run_id, "candidate", {"version": done, "model_name": args.model_name})
        return

    spark = get_spark("train_classifier")
    features = spark.read.parquet(storage.spark_path(lake.features(fingerprint)))
    features = with_split(features_up_to(features, window.end_id)).persist()
    check_one_feature_space(features, fingerprint)
    counts = {(row["split"], row["label"]): row["count"] for row in features.groupBy("split", "label").count().collect()}
    check_class_counts({label: n for (split, label), n in counts.items() if split == "train"}, args.min_examples_per_class)

    version = registry.allocate_version(args.run_id)
    started = time.monotonic()
    model = fit_classifier(features.filter("split = 'train'"), args.reg_param, args.max_iter)
    seconds = round(time.monotonic() - started, 3)
    registry.save_model(version, model)
    registry.write_document(
        version,
        "metadata",
        {
            "version": version,
            "model_name": args.model_name,
            "labels": model_labels(model),
            "fingerprint": fingerprint,
            "classifier": {"type": "LogisticRegression", "family": "multinomial", "reg_param": args.reg_param,
                           "max_iter": args.max_iter},
            "rows": {split: {label: n for (s, label), n in sorted(counts.items()) if s == split}
                     for split in sorted({s for s, _ in counts})},
            "data_window_end": window.end.isoformat(),
            "run_id": args.run_id,
            "dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID"),
            "code_version": settings.code_version(),
            "training_seconds": seconds,
        },
    )
    lake.write_run(args.run_id, "candidate", {"version": version, "model_name": args.model_name})
    log.info("trained %s version %d on %s in %.1f s", args.model_name, version, fingerprint, seconds)


if __name__ == "__main__":
    cli.run(main)
