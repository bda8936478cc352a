"""Label the unlabelled images under an S3 prefix with a model's current champion and write the predictions to the lake.

Lists <source-uri> once (every object, optionally only those modified in [--window-start, --window-end)), fetches
and validates the objects inside the executors as ingest does, extracts each distinct image's features in the
champion's own feature space, and scores them with the champion loaded from files checked against their sha256.
Writes one row per object to predictions/<model>/run_id=<run>/ (key, etag, sha256, predicted_label, probability,
model version, fingerprint; or the reason it could not be scored), replacing what an earlier attempt of the same run
wrote, and the run's scoring report. The batch's distinct scored images are compared with the champion's drift
reference (imagepipe.drift): the verdict goes into the report ("drift") and, as one row per run, into the model's
drift table; a champion trained before drift monitoring has no reference, and its runs record why drift was skipped.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone

from imagepipe import cli, drift, params, tables
from imagepipe.classifiers import PREDICTED_LABEL
from imagepipe.errors import InputError
from imagepipe.features import feature_space_spec
from imagepipe.featurizer import ERROR_COLUMN
from imagepipe.images import ValidationBounds
from imagepipe.ingest import candidate_frame, fetch_and_validate, folder_prefix, rejections_by_kind, select_objects
from imagepipe.lake import Lake
from imagepipe.object_store import list_objects, parse_s3_uri, s3_client
from imagepipe.records import ScoringRecord
from imagepipe.registry import open_registry
from imagepipe.scoring import featurize, prediction_rows
from imagepipe.spark import get_spark
from imagepipe.windows import EPOCH, Window, parse_timestamp

log = logging.getLogger("score_images")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("score_images", __doc__, "names this run's predictions partition and report")
    params.SCORE.add_to(parser)
    cli.add_registry(parser)
    parser.add_argument("--endpoint-url", help="S3 endpoint (default, also when empty: AWS_ENDPOINT_URL)")
    args = parser.parse_args(argv)
    args.endpoint_url = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    args.window_start, args.window_end = (None if text is None else parse_timestamp(text)
                                          for text in (args.window_start, args.window_end))
    return args


def main(argv: list[str] | None = None) -> None:
    from pyspark.sql import functions as F

    args = parse_args(argv)
    started = time.monotonic()
    lake = Lake(args.lake_root)
    registry = open_registry(args.model_name, args.registry_uri, args.lake_root)
    version = registry.champion_version()
    if version is None:
        raise InputError(f"{args.model_name} has no champion in {registry.where}: "
                         "promote a model before scoring with it")
    fingerprint = registry.metadata(version)["fingerprint"]
    stored_reference = registry.document(version, "drift_reference")
    reference = None if stored_reference is None else drift.Reference.from_json(stored_reference)
    thresholds = drift.Thresholds(args.drift_class_mix_psi, args.drift_top_probability_psi, args.drift_feature_psi,
                                  args.drift_min_images)
    spec = feature_space_spec(lake, fingerprint)
    window = Window(args.window_start or EPOCH, args.window_end or datetime.now(timezone.utc))
    bucket, prefix = parse_s3_uri(args.source_uri)
    prefix = folder_prefix(prefix)
    # Scoring needs no label: every object of the window is taken.
    selection = select_objects(
        list_objects(s3_client(args.endpoint_url), bucket, prefix), prefix, window, lambda key: ""
    )
    log.info("%s: %d objects listed, %d in window [%s, %s) to score with %s version %d in feature space %s",
             args.source_uri, selection.listed, len(selection.candidates), window.start.isoformat(),
             window.end.isoformat(), args.model_name, version, fingerprint)

    output = lake.predictions(args.model_name)
    labels, unscored = {}, {}
    drift_report = drift.DriftReport(version, 0, skipped="no object to score")
    if selection.candidates:  # else nothing to write, and no Spark to start
        spark = get_spark("score_images", {"spark.sql.execution.arrow.maxRecordsPerBatch": str(args.batch_size)})
        model = registry.load_model(version)  # before the expensive part: a corrupted champion stops the run here
        candidates = candidate_frame(spark, [(info, None) for info, _ in selection.candidates])
        fetched = fetch_and_validate(
            candidates, bucket, args.endpoint_url, ValidationBounds(), args.fetch_threads
        ).persist()
        extracted = featurize(fetched, spec, fingerprint).persist()
        predictions = prediction_rows(fetched, extracted, model, fingerprint, args.model_name, version, args.run_id)
        snapshot = tables.overwrite_partitions(predictions, output, "run_id")
        fetched.unpersist()
        written = tables.read(spark, output, snapshot).filter(F.col("run_id") == args.run_id)
        labels = {row[PREDICTED_LABEL]: row["count"]
                  for row in written.filter(F.col("reason").isNull()).groupBy(PREDICTED_LABEL).count().collect()}
        unscored = rejections_by_kind(written.filter(F.col("reason").isNotNull()))
        # Drift is judged over distinct images: a copy under a second key is the same input to the model.
        scored = written.filter(F.col("reason").isNull()).dropDuplicates(["sha256"])
        drift_report = drift.compare(reference, version, scored, extracted.filter(F.col(ERROR_COLUMN).isNull()),
                                     thresholds)
        extracted.unpersist()
        tables.overwrite_partitions(
            drift.table_row(spark, drift_report, args.run_id, args.model_name, datetime.now(timezone.utc)),
            lake.drift(args.model_name), "run_id")
    seconds = time.monotonic() - started
    report = ScoringRecord(
        source_uri=args.source_uri,
        window=window.to_json(),
        model_name=args.model_name,
        model_version=version,
        fingerprint=fingerprint,
        listed=selection.listed,
        outside_window=selection.outside_window,
        scored=sum(labels.values()),
        not_scored=unscored,
        labels=dict(sorted(labels.items())),
        predictions=output.identifier,
        seconds=round(seconds, 3),
        objects_per_s=round(len(selection.candidates) / seconds, 1),
        drift=drift_report.to_json(),
    )
    lake.write_record(args.run_id, report)
    log.info("scored %d of %d objects with %s version %d in %.1f s (%.1f objects/s); not scored: %s; predictions in %s",
             report.scored, len(selection.candidates), args.model_name, version, seconds, report.objects_per_s,
             unscored or "none", output.identifier)
    for line in drift.explain(drift_report):
        (log.warning if drift_report.alarm else log.info)("drift: %s", line)


if __name__ == "__main__":
    cli.run(main)
