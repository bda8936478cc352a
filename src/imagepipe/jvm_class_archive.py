"""A class-data-sharing archive of the classes a local Spark job loads, so each job's JVM maps them ready-parsed and
verified instead of loading and verifying some ten thousand classes from Spark's jars at every start (about a
quarter of a small job's CPU, bench/RESULTS.md). Built once per Spark install and Java (`make install` builds it:
`python -m imagepipe.jvm_class_archive build`); a job finds none, or none matching its jars and Java, and starts as
it would without.

This module is imported where tasks start jobs: it reads only files' metadata, never pyspark itself."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _spark_jars() -> Path | None:
    spec = importlib.util.find_spec("pyspark")
    return Path(spec.origin).parent / "jars" if spec and spec.origin else None


def _java() -> Path | None:
    """The java spark-submit starts: $JAVA_HOME's, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = Path(home, "bin", "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def archive_path() -> Path | None:
    """Where the archive for this Spark install and this Java lives, whether built or not; None without either. The
    name changes with the jars and the JVM, which the JVM checks an archive against: a stale one is never named."""
    jars, java = _spark_jars(), _java()
    if jars is None or java is None or not jars.is_dir():
        return None
    install = hashlib.sha256(str(jars).encode()).hexdigest()[:12]
    # The lake's jars (jars.lock) are on the class path the archive is checked against too.
    lock = Path(__file__).resolve().parents[2] / "jars.lock"
    pinned = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else ""
    build = hashlib.sha256(
        f"{jars.stat().st_mtime_ns} {java} {java.stat().st_mtime_ns} {pinned}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imagepipe"
    return cache / f"spark-classes-{install}-{build}.jsa"


def java_options() -> str:
    """The JVM option that maps the archive, when it is built; else nothing."""
    path = archive_path()
    return f"-XX:SharedArchiveFile={path}" if path and path.is_file() else ""


# What the archive holds: the classes a session, Spark SQL, Parquet, an Iceberg table's commit and read, Arrow's
# Python UDFs and MLlib load.
WORKLOAD = """
import sys
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import Vectors
from imagepipe import tables
from imagepipe.lake import Lake
from imagepipe.spark import SHORT_JVM_OPTIONS, get_spark

folder, archive = sys.argv[1:]
spark = get_spark("imagepipe-class-archive", {
    "spark.sql.shuffle.partitions": "2",
    # Started as the jobs' JVMs are (one maps only an archive dumped under its own GC); it writes the archive at exit.
    "spark.driver.extraJavaOptions": f"{SHORT_JVM_OPTIONS} -XX:ArchiveClassesAtExit={archive} -Xlog:cds=off"})
rows = spark.range(64).selectExpr("id", "id % 2 AS label", "CAST(id AS STRING) AS name")
rows.write.partitionBy("label").parquet(folder + "/rows")
read = spark.read.parquet(folder + "/rows")
read.groupBy("label").count().join(read, "label").orderBy("id").collect()
read.mapInPandas(lambda batches: batches, read.schema).count()
table = Lake(folder + "/lake").images
tables.overwrite_partitions(read, table, "label")
tables.read(spark, table, tables.current_snapshot(spark, table)).count()
examples = spark.createDataFrame([(Vectors.dense([float(i % 2), 1.0]), float(i % 2)) for i in range(16)],
                                 ["features", "label"])
model = LogisticRegression(maxIter=2).fit(examples)
model.write().overwrite().save(folder + "/model")
model.transform(examples).count()
spark.stop()
"""


def build() -> Path | None:
    """Build the archive unless it is there (replacing this Spark install's older ones); its path, None where there
    is no Spark or no Java to build for."""
    path = archive_path()
    if path is None or path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=path.parent) as folder:
        partial = Path(folder) / path.name
        env = {name: value for name, value in os.environ.items() if not name.startswith("PYSPARK_GATEWAY_")}
        env.update({"IMAGEPIPE_SPARK_MASTER": "local[2]", "PYSPARK_PYTHON": sys.executable,
                    "IMAGEPIPE_CATALOG_URI": f"jdbc:sqlite:{folder}/catalog.sqlite"})
        workload = subprocess.run([sys.executable, "-c", WORKLOAD, folder, str(partial)], env=env,
                                  capture_output=True, text=True)
        if workload.returncode != 0 or not partial.is_file():
            raise RuntimeError(f"building Spark's class archive failed: {workload.stderr.strip()[-2000:]}")
        for older in path.parent.glob(f"{path.name.rsplit('-', 1)[0]}-*.jsa"):
            older.unlink()
        os.replace(partial, path)  # the JVM wrote it at exit; moved whole, so no job maps a partial archive
    return path


if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python -m imagepipe.jvm_class_archive build")
    built = build()
    print(f"Spark's class archive: {built}" if built else "no Spark or no Java: no class archive built")
