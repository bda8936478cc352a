"""Forgetting an image (a person's photo, a withdrawn licence): its rows leave every table of the dataset's lake
(images, quarantine, each feature space's features and errors, predictions), one commit per table that held any; the
model versions whose training read it are listed; then every table's older snapshots are expired and its orphan
files removed, so no file under the lake holds its bytes any more (time travel to earlier snapshots ends with them).

Nothing else is removed: the registry's versions (their reports' thumbnails included), the run records and the
source bucket's objects stay. The image is named by its object key or its sha256; a key stands for the bytes stored
under it, which are the image whatever key they came under.
"""

from __future__ import annotations

from datetime import datetime

from imagepipe import tables
from imagepipe.errors import InputError
from imagepipe.lake import CATALOG, Lake, Table
from imagepipe.training import split_features, training_since_id
from imagepipe.windows import EPOCH, Window, parse_timestamp


def namespace_tables(spark, lake: Lake) -> list[Table]:
    """Every table of the lake's namespace, with the location the catalog records (the `forgotten` record too)."""
    if not spark.catalog.databaseExists(f"{CATALOG}.`{lake.namespace}`"):
        return []
    found = []
    for row in spark.sql(f"SHOW TABLES IN {CATALOG}.`{lake.namespace}`").collect():
        table = Table(lake.namespace, row["tableName"], "")
        details = spark.sql(f"DESCRIBE TABLE EXTENDED {table.identifier}").collect()
        location = next(row["data_type"] for row in details if row["col_name"] == "Location")
        found.append(table._replace(location=location))
    return sorted(found)


def _condition(columns: list[str], key: str | None, sha256s: set[str]) -> tuple[str, dict] | None:
    """A parameterised WHERE clause matching the image in a table with these columns; None when it cannot."""
    clauses, args = [], {}
    if key is not None and "key" in columns:
        clauses.append("key = :key")
        args["key"] = key
    if sha256s and "sha256" in columns:
        names = [f"sha{index}" for index in range(len(sha256s))]
        clauses.append(f"sha256 IN ({', '.join(':' + name for name in names)})")
        args.update(zip(names, sorted(sha256s), strict=True))
    return (" OR ".join(clauses), args) if clauses else None


def image_hashes(spark, lake: Lake, key: str | None, sha256: str | None) -> set[str]:
    """The sha256 of the bytes to forget: the one given, or those the images table holds under the key."""
    if sha256 is not None:
        return {sha256}
    images = tables.read(spark, lake.images)
    if images is None:
        return set()
    return {row["sha256"] for row in images.filter(images.key == key).select("sha256").distinct().collect()}


def versions_trained_on(spark, lake: Lake, registry, sha256s: set[str]) -> list[dict]:
    """The model versions whose training read one of these images, with the splits it was in: each version's
    feature space up to its window end (and training days), as the lake holds it before the image is removed."""
    from pyspark.sql import functions as F

    found = []
    for version in registry.versions() if sha256s else []:
        metadata = registry.document(version, "metadata")
        if metadata is None or tables.read(spark, lake.features(metadata["fingerprint"])) is None:
            continue
        window = Window(EPOCH, parse_timestamp(metadata["data_window_end"]))
        rows = split_features(spark, lake, metadata["fingerprint"], window.end_id,
                              training_since_id(window, metadata.get("training_days")))
        matched = rows.filter(F.col("sha256").isin(sorted(sha256s))).select("split").distinct().collect()
        if matched:
            found.append({"version": version, "splits": sorted(row["split"] for row in matched)})
    return found


def rows_matching(spark, lake: Lake, key: str | None, sha256s: set[str]) -> dict[Table, tuple]:
    """{table: (rows of the image, WHERE clause, its parameters)} of each table that holds the image; the
    `forgotten` record is not one of them."""
    found = {}
    for table in namespace_tables(spark, lake):
        if table.name == lake.forgotten.name:
            continue
        condition = _condition(spark.table(table.identifier).columns, key, sha256s)
        if condition is None:
            continue
        where, args = condition
        count = spark.sql(f"SELECT count(*) AS n FROM {table.identifier} WHERE {where}", args=args).first()["n"]
        if count:
            found[table] = (count, where, args)
    return found


def delete_rows(spark, matches: dict[Table, tuple]) -> None:
    """Remove the matched rows, one commit per table."""
    for table, (_, where, args) in matches.items():
        spark.sql(f"DELETE FROM {table.identifier} WHERE {where}", args=args)


def expire(spark, lake_tables: list[Table], now: datetime) -> None:
    """Keep each table's current snapshot only and delete every file no snapshot refers to any more, the files of
    killed writes included: no earlier copy of a removed row stays in the lake's storage. Orphan files are removed
    through Iceberg's action, since its procedure refuses anything younger than a day (a write in flight beside it
    would lose its files: the forget DAG waits for the dataset's writers first)."""
    moment = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    jvm, session = spark.sparkContext._jvm, spark._jsparkSession
    for table in lake_tables:
        name = f"{table.namespace}.{table.name}"
        spark.sql(f"CALL {CATALOG}.system.expire_snapshots(table => '{name}', "
                  f"older_than => TIMESTAMP '{moment}', retain_last => 1)")
        iceberg_table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(session, table.identifier)
        (jvm.org.apache.iceberg.spark.actions.SparkActions.get(session).deleteOrphanFiles(iceberg_table)
         .olderThan(int(now.timestamp() * 1000)).execute())


def check_one_image(key: str | None, sha256: str | None) -> None:
    if (key is None) == (sha256 is None):
        raise InputError("name the image to forget by its key or by its sha256, not both and not neither")
