"""The lake's tables as Apache Iceberg tables in one catalog (Iceberg's JDBC catalog: an embedded SQLite file on the
laptop, PostgreSQL in production; settings.catalog_uri), read and written by Spark through Iceberg's runtime.

Every write is one commit: a killed write leaves the table at its previous snapshot, a reader sees one whole
snapshot, and two writers of one table commit in turn (Iceberg retries a commit on a changed table when the two
touch different partitions) or one fails. Each table's files live under its Lake location (lake.py).

From Python without Spark, read_arrow reads a table through pyiceberg, from the same catalog.
"""

from __future__ import annotations

import os

from imagepipe import jars, settings, storage
from imagepipe.errors import InputError
from imagepipe.lake import CATALOG, Table

_CATALOG_CONF = f"spark.sql.catalog.{CATALOG}"


def spark_conf() -> dict[str, str]:
    """What a job's spark-submit needs for the lake: the pinned jars on its class path, and the catalog's conf."""
    return {**classpath_conf(), **catalog_conf()}


def classpath_conf() -> dict[str, str]:
    """The pinned jars on the class path of the driver and of every executor, from the same folder on each machine
    (the image's, or this machine's cache for a local cluster): shipped with spark.jars, each executor would copy
    700 MB per job. Only a JVM being started can take them: a driver under spark-submit has them already."""
    classpath = os.pathsep.join(jars.paths())
    return {"spark.driver.extraClassPath": classpath, "spark.executor.extraClassPath": classpath}


def catalog_conf() -> dict[str, str]:
    """Iceberg's SQL extensions (its procedures), the catalog, and S3A pointed at the object store's endpoint. S3A
    takes credentials from the environment, as boto3 does: none are written into the conf."""
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        _CATALOG_CONF: "org.apache.iceberg.spark.SparkCatalog",
        f"{_CATALOG_CONF}.type": "jdbc",
        f"{_CATALOG_CONF}.uri": settings.catalog_uri(),
        # The catalog schema that also serves views: Spark asks the catalog about views when it looks a table up.
        f"{_CATALOG_CONF}.jdbc.schema-version": "V1",
        # Each lookup reads the table's current metadata: other processes (a job beside this one) commit too.
        f"{_CATALOG_CONF}.cache-enabled": "false",
        # Where a table without a location of its own would go; the lake names every table's location.
        f"{_CATALOG_CONF}.warehouse": storage.spark_path(settings.lake_root()),
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https")).lower()
    return conf


def _check_not_parquet_layout(table: Table) -> None:
    """Refuse a lake written before the lake's tables were Iceberg tables: Parquet partition folders at the
    table's location, which the catalog does not know."""
    folders = storage.open_store(table.location).list()
    if any(name.startswith(("window_id=", "run_id=")) for name in folders):
        raise InputError(f"{table.location} holds Parquet partitions of the lake's earlier layout, not an Iceberg "
                         "table: migrate the lake first (python -m spark_jobs.migrate_lake --lake-root LAKE_ROOT)")


def exists(spark, table: Table) -> bool:
    if spark.catalog.tableExists(table.identifier):
        return True
    _check_not_parquet_layout(table)
    return False


def read(spark, table: Table, snapshot_id: int | None = None):
    """The table's rows (as of snapshot_id, when given), or None while the table does not exist."""
    if not exists(spark, table):
        if snapshot_id is not None:
            raise InputError(f"table {table.identifier} does not exist, so it has no snapshot {snapshot_id}")
        return None
    reader = spark.read
    if snapshot_id is not None:
        reader = reader.option("versionAsOf", str(snapshot_id))
    return reader.table(table.identifier)


def current_snapshot(spark, table: Table) -> int | None:
    """The id of the table's current snapshot (what a read now sees), None for a table never written."""
    if not exists(spark, table):
        return None
    rows = spark.sql(f"SELECT snapshot_id FROM {table.identifier}.refs WHERE name = 'main'").collect()
    return rows[0]["snapshot_id"] if rows else None


def create(frame, table: Table, partition_column: str) -> None:
    """The table, with frame's columns, partitioned by partition_column, at its lake location, unless it exists."""
    spark = frame.sparkSession
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.`{table.namespace}`")
    columns = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in frame.schema.fields)
    spark.sql(f"CREATE TABLE IF NOT EXISTS {table.identifier} ({columns}) USING iceberg "
              f"PARTITIONED BY (`{partition_column}`) LOCATION '{table.location}' "
              "TBLPROPERTIES ('format-version' = '2', 'write.parquet.compression-codec' = 'zstd')")


def overwrite_partitions(frame, table: Table, partition_column: str) -> int | None:
    """Replace, in one commit, the partitions of partition_column that frame has rows for (a window's, a run's),
    creating the table on its first write. Returns the table's snapshot id after the commit."""
    spark = frame.sparkSession
    if not exists(spark, table):
        create(frame, table, partition_column)
    # Serializable: a writer that committed data to these partitions after this write began (a zombie attempt beside
    # its retry) makes this commit fail, rather than both writers' files ending in one partition.
    writer = frame.writeTo(table.identifier).option("isolation-level", "serializable")
    started_from = current_snapshot(spark, table)
    if started_from is not None:
        writer = writer.option("validate-from-snapshot-id", str(started_from))
    writer.overwritePartitions()
    return current_snapshot(spark, table)


def sqlalchemy_url(jdbc_url: str) -> str:
    """The catalog's JDBC URL as pyiceberg's SQL catalog (SQLAlchemy) names the same database."""
    for jdbc, sqlalchemy in (("jdbc:sqlite:", "sqlite:///"), ("jdbc:postgresql:", "postgresql+psycopg2:")):
        if jdbc_url.startswith(jdbc):
            return sqlalchemy + jdbc_url.removeprefix(jdbc).removeprefix("//" if jdbc == "jdbc:sqlite:" else "")
    raise InputError(f"catalog URI {jdbc_url} is neither SQLite nor PostgreSQL; "
                     "give IMAGEPIPE_CATALOG_URI as jdbc:sqlite:PATH or jdbc:postgresql://HOST/DB")


def python_catalog():
    """The lake's catalog as pyiceberg opens it, on the same database and storage, for Python without Spark."""
    from pyiceberg.catalog.sql import SqlCatalog

    properties = {"uri": sqlalchemy_url(settings.catalog_uri()),
                  "s3.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if os.environ.get("AWS_ENDPOINT_URL"):
        properties["s3.endpoint"] = os.environ["AWS_ENDPOINT_URL"]
    return SqlCatalog(CATALOG, **properties)


def python_table(table: Table):
    """The table as pyiceberg loads it from the lake's catalog."""
    return python_catalog().load_table((table.namespace, table.name))


def read_arrow(table: Table, columns: tuple[str, ...] = ("*",)):
    """The table's current rows as a pyarrow Table, without Spark."""
    return python_table(table).scan(selected_fields=columns).to_arrow()
