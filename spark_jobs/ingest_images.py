"""Ingest the labelled images of one window from S3-compatible storage into the lake.

Lists <source-uri> once (keys only), fetches and validates the window's objects inside the executors, keeps each
distinct image once, quarantines the rejected with their reason, and overwrites only this window's partitions, so a
re-run of the same window gives the same lake. Writes the run's window and ingest report, then moves the watermark,
unless more objects were rejected than --max-rejected-fraction allows: then the run fails (the good images and the
quarantine are kept) and the next run takes the window again.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone

from imagepipe import cli, params, storage, tables
from imagepipe.errors import InputError
from imagepipe.images import ValidationBounds
from imagepipe.ingest import (
    CONFLICT_REASON,
    candidate_frame,
    check_rejected_fraction,
    curate,
    fetch_and_validate,
    folder_prefix,
    manifest_labeler,
    parse_manifest,
    rejections_by_kind,
    select_objects,
)
from imagepipe.lake import WINDOW_COLUMN, Lake
from imagepipe.object_store import list_objects, parse_s3_uri, s3_client
from imagepipe.records import IngestRecord, WindowRecord
from imagepipe.spark import get_spark
from imagepipe.windows import Window, parse_timestamp, resolve_window

log = logging.getLogger("ingest_images")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("ingest_images", __doc__, "names this run's records in the lake")
    parser.add_argument("--endpoint-url", help="S3 endpoint (default, also when empty: AWS_ENDPOINT_URL)")
    params.INGEST.add_to(parser)  # the window too: --window-start (an instant, or 'watermark') and --window-end
    args = parser.parse_args(argv)
    args.endpoint_url = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    args.window_end = parse_timestamp(args.window_end)
    if args.min_side > args.max_side:
        parser.error(f"--min-side {args.min_side} is above --max-side {args.max_side}")
    return args


def run_window(lake: Lake, run_id: str, start: str, end) -> Window:
    """The run's window, decided once: a retry of the run with the same arguments reuses the window its first
    attempt recorded (its watermark start and its end, cut at the listing moment, stay as they were)."""
    request = {"start": start, "end": end.isoformat()}
    recorded = lake.find_record(run_id, WindowRecord)
    if recorded is not None and recorded.request == request:
        return recorded.window
    watermark = storage.read_json(lake.watermark)
    window = resolve_window(
        start, end.isoformat(), parse_timestamp(watermark["end"]) if watermark else None,
        listed_at=datetime.now(timezone.utc),
    )
    lake.write_record(run_id, WindowRecord.of(window, run_id, request))
    return window


def commit_window(spark, lake: Lake, window: Window, fetched, run_id: str):
    """Curate the window's fetched objects against the rest of the lake and commit the images and the quarantine,
    each in one commit that replaces this window's partition (a re-run of the window replaces its own rows).
    (the images table's snapshot after it, the images ingested per label, this run's quarantine rows)"""
    from pyspark.sql import functions as F

    existing = tables.read(spark, lake.images)
    if existing is not None:
        existing = existing.filter(F.col(WINDOW_COLUMN) != window.id)
    images, quarantine = curate(fetched, existing, window, run_id)
    snapshot = tables.overwrite_partitions(images, lake.images, WINDOW_COLUMN)
    quarantine_snapshot = tables.overwrite_partitions(quarantine, lake.quarantine, WINDOW_COLUMN)
    # Counted from the rows just committed: counting `images` would run its dedupe against the lake again.
    this_run = (F.col(WINDOW_COLUMN) == window.id) & (F.col("run_id") == run_id)
    counts = tables.read(spark, lake.images, snapshot).filter(this_run).groupBy("label").count().collect()
    quarantined = tables.read(spark, lake.quarantine, quarantine_snapshot).filter(this_run)
    return snapshot, {row["label"]: row["count"] for row in counts}, quarantined


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    lake = Lake(args.lake_root)
    window = run_window(lake, args.run_id, args.window_start, args.window_end)
    bucket, prefix = parse_s3_uri(args.source_uri)
    prefix = folder_prefix(prefix)
    labeler = None
    if args.label_manifest:
        text = storage.read_text(args.label_manifest, args.endpoint_url)
        if text is None:
            raise InputError(f"label manifest {args.label_manifest} does not exist; "
                             "give an existing CSV or JSON Lines file")
        labeler = manifest_labeler(parse_manifest(text, args.label_manifest), prefix)
    selection = select_objects(list_objects(s3_client(args.endpoint_url), bucket, prefix), prefix, window, labeler)
    log.info("window %s: %d objects listed, %d to fetch", window.id, selection.listed, len(selection.candidates))

    spark = get_spark("ingest_images")
    quarantined: list[dict] = []  # key and reason of each object this run quarantined
    if selection.candidates:
        candidates = candidate_frame(spark, selection.candidates)
        bounds = ValidationBounds(args.min_side, args.max_side, args.max_pixels)
        fetched = fetch_and_validate(candidates, bucket, args.endpoint_url, bounds, args.fetch_threads).persist()
        snapshot, labels, quarantine_rows = commit_window(spark, lake, window, fetched, args.run_id)
        rejected = rejections_by_kind(quarantine_rows)
        quarantined = [{"key": row["key"], "reason": row["reason"]}
                       for row in quarantine_rows.select("key", "reason").orderBy("key").collect()]
        fetched.unpersist()
    else:  # nothing to fetch, so nothing to commit: the tables stay at their snapshots
        snapshot, labels, rejected = tables.current_snapshot(spark, lake.images), {}, {}
    conflicts = rejected.pop(CONFLICT_REASON, 0)
    seconds = time.monotonic() - started
    report = IngestRecord(
        source_uri=args.source_uri,
        window=window.to_json(),
        listed=selection.listed,
        outside_window=selection.outside_window,
        unlabeled=selection.unlabeled,
        fetched=len(selection.candidates),
        bytes=sum(info.size for info, _ in selection.candidates),
        ingested=sum(labels.values()),
        duplicates=len(selection.candidates) - sum(labels.values()) - sum(rejected.values()) - conflicts,
        conflicts=conflicts,
        rejected=rejected,
        labels=dict(sorted(labels.items())),
        images_snapshot=snapshot,
        quarantined=quarantined,
        seconds=round(seconds, 3),
        objects_per_s=round(len(selection.candidates) / seconds, 1),
    )
    lake.write_record(args.run_id, report)
    log.info("ingest report %s: %s", lake.run_document(args.run_id, "ingest"), report)
    check_rejected_fraction(
        sum(rejected.values()), len(selection.candidates), args.max_rejected_fraction, lake.quarantine.identifier
    )
    watermark = storage.read_json(lake.watermark)
    if watermark is None or parse_timestamp(watermark["end"]) < window.end:
        storage.write_json(lake.watermark, {"end": window.end.isoformat(), "run_id": args.run_id})
    log.info("ingested %d new images of %d listed in window %s (duplicates %d, rejected %d, unlabeled %d) in %.1f s, "
             "%.1f objects/s", report.ingested, report.listed, window.id, report.duplicates,
             sum(rejected.values()) + conflicts, report.unlabeled, seconds, report.objects_per_s)


if __name__ == "__main__":
    cli.run(main)
