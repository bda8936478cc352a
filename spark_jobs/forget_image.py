"""Forget one image: remove it, by object key or sha256, from every table of the dataset's lake (images, quarantine,
features and their errors, predictions), one commit per table that held it; record who asked, when and why, with the
model versions whose training read it, in the lake's `forgotten` table and the run's record; then expire every
table's older snapshots and remove its orphan files, so no file under the lake holds the image's bytes any more.

Nothing else is removed (imagepipe.forget). The `forgotten` entry is written first: a retry of a run that wrote it
finishes the removal and the expiry, and keeps the entry its first attempt wrote.
"""

from __future__ import annotations

import getpass
import json
import logging
from datetime import datetime, timezone

from imagepipe import cli, params, tables
from imagepipe.errors import InputError
from imagepipe.forget import (
    check_one_image,
    delete_rows,
    expire,
    image_hashes,
    namespace_tables,
    rows_matching,
    versions_trained_on,
)
from imagepipe.lake import Lake
from imagepipe.records import ForgetRecord
from imagepipe.registry import open_registry
from imagepipe.spark import get_spark

log = logging.getLogger("forget_image")
ENTRY_SCHEMA = ("key string, sha256 array<string>, reason string, requested_by string, forgotten_at timestamp, "
                "rows_removed string, model_versions string, run_id string")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("forget_image", __doc__, "names the record of what was forgotten")
    cli.add_model_name(parser)
    params.FORGET.add_to(parser)
    parser.add_argument("--requested-by", default=None, help="who asked for it (default: this machine's user)")
    args = parser.parse_args(argv)
    try:
        check_one_image(args.image_key, args.image_sha256)
    except InputError as error:
        parser.error(str(error))
    args.requested_by = args.requested_by or getpass.getuser()
    return args


def recorded_entry(spark, lake: Lake, run_id: str) -> dict | None:
    """The `forgotten` entry this run wrote, if it wrote one."""
    forgotten = tables.read(spark, lake.forgotten)
    rows = [] if forgotten is None else forgotten.filter(forgotten.run_id == run_id).collect()
    return rows[0].asDict() if rows else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    lake = Lake(args.lake_root)
    spark = get_spark("forget_image")
    sha256s = image_hashes(spark, lake, args.image_key, args.image_sha256)
    matches = rows_matching(spark, lake, args.image_key, sha256s)
    entry = recorded_entry(spark, lake, args.run_id)
    if entry is None:
        if not matches:
            named = f"key {args.image_key}" if args.image_key else f"sha256 {args.image_sha256}"
            raise InputError(f"no table of the lake {lake.root} holds an image with {named}: nothing was forgotten; "
                             "give the image's whole object key, or its sha256")
        registry = open_registry(args.model_name, args.registry_uri, args.lake_root)
        entry = {"key": args.image_key, "sha256": sorted(sha256s), "reason": args.forget_reason,
                 "requested_by": args.requested_by, "forgotten_at": datetime.now(timezone.utc),
                 "rows_removed": json.dumps({table.identifier: count for table, (count, _, _) in matches.items()}),
                 "model_versions": json.dumps(versions_trained_on(spark, lake, registry, sha256s)),
                 "run_id": args.run_id}
        tables.overwrite_partitions(spark.createDataFrame([entry], ENTRY_SCHEMA), lake.forgotten, "run_id")
    delete_rows(spark, matches)
    expire(spark, namespace_tables(spark, lake), datetime.now(timezone.utc))
    # Read back, a timestamp is in this machine's local time without its zone: made UTC again.
    record = ForgetRecord(**{**entry, "forgotten_at": entry["forgotten_at"].astimezone(timezone.utc).isoformat(),
                             "rows_removed": json.loads(entry["rows_removed"]),
                             "model_versions": json.loads(entry["model_versions"])})
    lake.write_record(args.run_id, record)
    log.info("forgot %s (%s) for %s: rows removed %s; model versions whose training read it: %s; older snapshots "
             "and orphan files expired", args.image_key or args.image_sha256, entry["reason"], entry["requested_by"],
             record.rows_removed, [version["version"] for version in record.model_versions] or "none")


if __name__ == "__main__":
    cli.run(main)
