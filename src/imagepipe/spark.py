"""The one place a SparkSession is made, for the jobs and for the tests."""

from __future__ import annotations

import os
import sys

from imagepipe import jvm_class_archive

# Settings every imagepipe job relies on (the lake's catalog and jars come from imagepipe.tables).
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.ui.showConsoleProgress": "false",
}
# A job on a local master is one short JVM on the machine that runs it: the JIT's optimising tier and parallel GC
# threads cost it more CPU than they save in a job of minutes (about 40 % of a small job's CPU time,
# bench/RESULTS.md); it maps Spark's classes from the class archive when one is built. Cluster masters keep the JVM's
# defaults, and a conf the user sets wins.
SHORT_JIT = "-XX:TieredStopAtLevel=1"
SERIAL_GC = "-XX:+UseSerialGC"
SHORT_JVM_OPTIONS = f"{SHORT_JIT} {SERIAL_GC}"
# Jobs whose own work is numeric loops in the JVM (MLlib's fits, the drift reference's PCA) keep the optimising tier:
# without it a logistic regression on 8,426 x 1,280 features took 157 s instead of 19 s (bench/RESULTS.md).
JVM_BOUND_JOBS = frozenset({"train_classifier"})


def local_driver_conf(job: str | None = None) -> dict[str, str]:
    jvm = SERIAL_GC if job in JVM_BOUND_JOBS else SHORT_JVM_OPTIONS
    return {"spark.driver.extraJavaOptions": f"{jvm} {jvm_class_archive.java_options()}".strip()}


def driver_conf(master: str | None, conf: dict[str, str], job: str | None = None) -> dict[str, str]:
    """The conf the driver of `job` starts with on this master: on a local one, the short-JVM options (or, for a
    JVM-bound job, the serial GC alone) under `conf`."""
    return {**local_driver_conf(job), **conf} if master and master.startswith("local") else conf


def own_jvm_environment() -> dict[str, str]:
    """This process's environment for a child that must start a JVM of its own: without the gateway variables that
    would attach its Python to this process's JVM instead (set here under spark-submit, and in a test session)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PYSPARK_GATEWAY_")}


def get_spark(app_name: str, conf: dict[str, str] | None = None):
    """The active session, or a new one. Under spark-submit its --master and --conf stand; run with plain python
    (tests, `python -m spark_jobs.<job>`), the master comes from IMAGEPIPE_SPARK_MASTER (default local[*])."""
    from pyspark.sql import SparkSession

    from imagepipe import tables

    conf = {**BASE_CONF, **tables.catalog_conf(), **(conf or {})}
    # spark-submit starts the JVM with its settings before Python runs and tells Python where by this variable. A
    # SparkConf made before the session cannot see them, so the master must not be set here: it would replace
    # --master and run the job locally on the driver.
    master = None if "PYSPARK_GATEWAY_PORT" in os.environ else os.environ.get("IMAGEPIPE_SPARK_MASTER", "local[*]")
    if master:  # this process starts the JVM: with the lake's jars (spark-submit's got them from the task)
        conf = {**tables.classpath_conf(), **conf}
    conf = driver_conf(master, conf, app_name)
    if master and master.startswith("local"):
        # Local Python workers run this interpreter (the project's venv), not whatever `python3` is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def ship_py_files_to_worker_subprocesses(spark) -> None:
    """Put the --py-files archives on the PYTHONPATH of the executors' Python workers, so the processes a worker
    starts (TorchDistributor's torchrun and its training processes) import the library too: Spark adds them to the
    worker's own sys.path only. Executors fetch them into their working directory, which the workers and their
    children run in, so each archive's bare name is found there. Call before the first task that needs it."""
    context = spark.sparkContext
    shipped = [os.path.basename(path) for path in context.getConf().get("spark.submit.pyFiles", "").split(",") if path]
    already = [path for path in context.environment.get("PYTHONPATH", "").split(os.pathsep) if path]
    context.environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*shipped, *already]))
