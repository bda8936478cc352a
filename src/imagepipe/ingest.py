"""Ingestion: choose the window's labelled objects, fetch and validate them inside executors, curate without
duplicates. Listing is done once on the driver (keys only); object bodies are fetched by the executors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from imagepipe.errors import InputError
from imagepipe.images import ValidationBounds, validate_image
from imagepipe.lake import WINDOW_COLUMN
from imagepipe.object_store import ObjectInfo
from imagepipe.windows import Window

CANDIDATE_DDL = "key string, label string, etag string, size long, last_modified timestamp"
FETCHED_DDL = (CANDIDATE_DDL
               + ", sha256 string, format string, width int, height int, mode string, content binary, reason string")
CONFLICT_REASON = "conflicting labels"
QUARANTINE_COLUMNS = ["key", "etag", "size", "reason", "run_id", WINDOW_COLUMN]


def folder_prefix(prefix: str) -> str:
    """A source prefix names a folder: `images` must not take `images_old/...`."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def label_for_key(key: str, prefix: str) -> str | None:
    """The label of <prefix>/<label>/<file>: the first folder under the prefix; None for a file directly in it."""
    prefix = folder_prefix(prefix)
    relative = key[len(prefix):] if key.startswith(prefix) else None
    if not relative or "/" not in relative:
        return None
    label, _, name = relative.partition("/")
    return label if label and name and not name.endswith("/") else None


@dataclass
class Selection:
    """The objects of one window that carry a label, and what was left out and why."""

    candidates: list[tuple[ObjectInfo, str]] = field(default_factory=list)
    listed: int = 0
    outside_window: int = 0
    unlabeled: int = 0


def parse_manifest(text: str, name: str) -> dict[str, str]:
    """{key: label} from a label manifest: CSV with a header holding `key` and `label`, or JSON Lines of objects with
    those fields (by the name's extension: .csv, .jsonl or .json)."""
    labels: dict[str, str] = {}
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"key", "label"} <= set(reader.fieldnames):
            raise InputError(
                f"label manifest {name} needs a header with key and label columns; found {reader.fieldnames}")
        rows = ((line, row) for line, row in enumerate(reader, start=2))
    elif name.endswith((".jsonl", ".json")):
        rows = ((line, _json_row(text_line, name, line))
                for line, text_line in enumerate(text.splitlines(), start=1) if text_line.strip())
    else:
        raise InputError(f"label manifest {name} must be .csv, .jsonl or .json (JSON Lines)")
    for line, row in rows:
        key, label = (row.get("key") or "").strip(), (row.get("label") or "").strip()
        if not key or not label:
            raise InputError(f"label manifest {name} line {line} lacks a key or a label; give both")
        labels[key] = label
    return labels


def _json_row(text: str, name: str, line: int) -> dict:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"label manifest {name} line {line} is not JSON: {error.msg}") from None
    if not isinstance(row, dict):
        raise InputError(f"label manifest {name} line {line} is not an object with key and label")
    return row


def manifest_labeler(labels: dict[str, str], prefix: str):
    """Label lookup by full key, or by the key relative to the prefix."""
    prefix = folder_prefix(prefix)
    return lambda key: labels.get(key) or labels.get(key[len(prefix):] if key.startswith(prefix) else None)


def select_objects(objects: Iterable[ObjectInfo], prefix: str, window: Window, labeler=None) -> Selection:
    """The window's objects with a label: from `labeler` (key -> label or None), by default the folder under the
    prefix."""
    labeler = labeler or (lambda key: label_for_key(key, prefix))
    selection = Selection()
    for info in objects:
        if info.key.endswith("/"):  # folder marker objects, as some consoles create
            continue
        selection.listed += 1
        if not window.contains(info.last_modified):
            selection.outside_window += 1
            continue
        label = labeler(info.key)
        if label is None:
            selection.unlabeled += 1
            continue
        selection.candidates.append((info, label))
    return selection


def candidate_frame(spark, candidates: list[tuple[ObjectInfo, str | None]]):
    """The listed objects to fetch as a DataFrame (CANDIDATE_DDL), in partitions of about 64 objects, at most four
    per core, so fetching spreads over the executors."""
    rows = [(info.key, label, info.etag, info.size, info.last_modified) for info, label in candidates]
    partitions = max(1, min(len(rows) // 64 + 1, spark.sparkContext.defaultParallelism * 4))
    return spark.createDataFrame(rows, CANDIDATE_DDL).repartition(partitions)


def _fetch_and_check(client, bucket: str, row: dict, bounds: ValidationBounds) -> dict:
    try:
        content = client.get_object(Bucket=bucket, Key=row["key"], IfMatch=row["etag"])["Body"].read()
    except client.exceptions.NoSuchKey:
        return {**row, "reason": "missing: deleted after listing"}
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
            raise
        return {**row, "reason": "changed: overwritten after listing; the next run takes the new version"}
    check = validate_image(content, bounds)
    return {
        **row,
        "sha256": check.sha256,
        "format": check.format,
        "width": check.width,
        "height": check.height,
        "mode": check.mode,
        "content": content if check.accepted else None,
        "reason": check.reason,
    }


def fetch_and_validate(candidates, bucket: str, endpoint_url: str | None, bounds: ValidationBounds, threads: int):
    """Fetch every candidate's bytes inside the executors, with `threads` concurrent requests per partition over a
    connection pool of the same size, and validate them; rejected rows keep their reason and no bytes."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import DataType

    arrow_schema = to_arrow_schema(DataType.fromDDL(FETCHED_DDL))  # timestamps in UTC

    def fetch_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from imagepipe.object_store import s3_client

        client = s3_client(endpoint_url, threads)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for batch in batches:
                rows = pool.map(lambda row: _fetch_and_check(client, bucket, row, bounds), batch.to_pylist())
                yield pa.RecordBatch.from_pylist(list(rows), schema=arrow_schema)

    return candidates.mapInArrow(fetch_partition, FETCHED_DDL)


def curate(fetched, existing_sha256, window: Window, run_id: str):
    """Split fetched rows into (images, quarantine) DataFrames for the window.

    Identical bytes under several keys with one label are kept once (the smallest key); identical bytes under
    different labels are all quarantined, since either label may be wrong; bytes already in the lake from another
    window are not taken again. `existing_sha256` is a DataFrame of the lake's sha256 values, or None.
    """
    from pyspark.sql import Window as SqlWindow
    from pyspark.sql import functions as F

    valid = fetched.filter(F.col("reason").isNull())
    labels = valid.groupBy("sha256").agg(F.array_sort(F.collect_set("label")).alias("labels"))
    valid = valid.join(labels, "sha256")
    conflicting = valid.filter(F.size("labels") > 1).withColumn(
        "reason", F.concat(F.lit(f"{CONFLICT_REASON}: same content labelled "), F.array_join("labels", ", "))
    )
    first_key = SqlWindow.partitionBy("sha256").orderBy("key")
    images = (
        valid.filter(F.size("labels") == 1)
        .withColumn("copy", F.row_number().over(first_key))
        .filter(F.col("copy") == 1)
        .drop("copy", "labels", "reason")
    )
    if existing_sha256 is not None:
        images = images.join(existing_sha256.select("sha256").distinct(), "sha256", "left_anti")
    window_columns = {
        "window_start": F.lit(window.start).cast("timestamp"),
        "window_end": F.lit(window.end).cast("timestamp"),
        "run_id": F.lit(run_id),
        WINDOW_COLUMN: F.lit(window.id),
    }
    images = images.withColumns(window_columns)
    rejected = fetched.filter(F.col("reason").isNotNull()).unionByName(conflicting.drop("labels"))
    quarantine = rejected.withColumns(window_columns).select(*QUARANTINE_COLUMNS)
    return images, quarantine


def check_rejected_fraction(rejected: int, fetched: int, max_fraction: float, quarantine_table: str) -> None:
    if fetched and rejected / fetched > max_fraction:
        raise InputError(
            f"{rejected} of {fetched} objects rejected ({rejected / fetched:.0%}), "
            f"above the allowed {max_fraction:.0%}: "
            f"see their reasons in {quarantine_table}, fix the source or raise max_rejected_fraction"
        )


def rejections_by_kind(quarantine) -> dict[str, int]:
    """Rejected objects per kind of reason (the reason's text before its colon)."""
    from pyspark.sql import functions as F

    rows = quarantine.groupBy(F.substring_index("reason", ":", 1).alias("kind")).count().collect()
    return dict(sorted((row["kind"], row["count"]) for row in rows))
