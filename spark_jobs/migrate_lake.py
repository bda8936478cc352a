"""Migrate a lake written in the earlier layout (plain Parquet partitions) to Iceberg tables, in place: each table
folder (images, quarantine, features and feature errors of each feature space, predictions of each model), of the
lake and of each dataset's lake under it, becomes the Iceberg table at the same location, every row of its partition
folders written into the table in one commit, after which those folders are removed; each feature space's settings
move to feature_spaces/<fingerprint>.json. Run records and the registry stay as they are, so every model's lineage
holds.

Idempotent: the commit replaces exactly the partitions it migrates, and a folder is removed only after its rows are
committed, so a run that stopped half way is finished by the next; a lake with nothing left to migrate is unchanged.

    python -m spark_jobs.migrate_lake --lake-root data/lake
"""

from __future__ import annotations

import logging

from imagepipe import cli, settings, storage, tables
from imagepipe.lake import WINDOW_COLUMN, Lake, Table
from imagepipe.spark import get_spark

log = logging.getLogger("migrate_lake")
# The earlier layout's feature-space settings, inside the feature table's folder.
EARLIER_FEATURE_SPACE = "_feature_space.json"


def parse_args(argv: list[str] | None):
    parser = cli.JobArgumentParser(prog="migrate_lake", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake-root", default=settings.lake_root(), help="lake root URI (default: %(default)s)")
    return parser.parse_args(argv)


def earlier_partitions(location: str, column: str) -> list[str]:
    """The earlier layout's partition folders (`<column>=<value>`) directly under a table's location."""
    return [name for name in storage.open_store(location).list() if name.startswith(f"{column}=")]


def earlier_tables(lake: Lake) -> list[tuple[Table, str]]:
    """(table, partition column) of each folder of the lake that holds partitions of the earlier layout."""
    found = [(lake.images, WINDOW_COLUMN), (lake.quarantine, WINDOW_COLUMN)]
    for folder, table in (("features", lake.features), ("feature_errors", lake.feature_errors)):
        found += [(table(name), WINDOW_COLUMN) for name in storage.open_store(storage.join(lake.root, folder)).list()]
    found += [(lake.predictions(name), "run_id")
              for name in storage.open_store(storage.join(lake.root, "predictions")).list()]
    return [(table, column) for table, column in found if earlier_partitions(table.location, column)]


def migrate_table(spark, table: Table, column: str) -> None:
    """Every row of the table's partition folders committed to the Iceberg table at the same location, in one
    commit that replaces those partitions; then the folders removed."""
    partitions = earlier_partitions(table.location, column)
    # Partition values are names (window and run ids), never numbers or dates to be guessed. The folders are named
    # one by one: beside them the table's own metadata/ and data/ folders are no partitions.
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    earlier = spark.read.option("basePath", table.location).parquet(
        *(storage.join(table.location, partition) for partition in partitions))
    rows = earlier.count()
    tables.create(earlier, table, column)
    tables.overwrite_partitions(earlier, table, column)
    store = storage.open_store(table.location)
    for partition in partitions:
        store.delete(partition)
    for marker in ("_SUCCESS", "._SUCCESS.crc"):  # the earlier writes' completion markers
        store.delete(marker)
    log.info("%s: the %d rows of %d partition folders are the Iceberg table %s", table.location, rows,
             len(partitions), table.identifier)


def move_feature_space_settings(lake: Lake) -> None:
    for fingerprint in storage.open_store(storage.join(lake.root, "features")).list():
        earlier = storage.join(lake.root, "features", fingerprint, EARLIER_FEATURE_SPACE)
        document = storage.read_json(earlier)
        if document is not None:
            storage.write_json(lake.feature_space_document(fingerprint), document)
            storage.open_store(storage.join(lake.root, "features", fingerprint)).delete(EARLIER_FEATURE_SPACE)


def lakes(root: str) -> list[Lake]:
    """The lake at root and each dataset's lake under it."""
    return [Lake(root), *(Lake(storage.join(root, "datasets", name))
                          for name in storage.open_store(storage.join(root, "datasets")).list())]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = get_spark("migrate_lake")
    for lake in lakes(args.lake_root):
        move_feature_space_settings(lake)
        for table, column in earlier_tables(lake):
            migrate_table(spark, table, column)


if __name__ == "__main__":
    cli.run(main)
