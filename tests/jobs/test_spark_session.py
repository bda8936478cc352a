"""The JVM of a local job, run by hand (python -m spark_jobs.<job>) or by spark-submit as under Airflow: it starts
with the short-job options and maps Spark's classes from the class archive `make install` builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imagepipe import jvm_class_archive, tables
from imagepipe.spark import SHORT_JVM_OPTIONS, driver_conf, own_jvm_environment


def test_a_session_made_by_hand_runs_its_jvm_without_the_optimising_jit_and_with_the_class_archive():
    archive = jvm_class_archive.build()  # make install built it; built here when the tests run without
    job = ("from imagepipe.spark import get_spark\n"
           "spark = get_spark('by-hand')\n"
           "print(spark.conf.get('spark.sql.session.timeZone'))\n"
           "print(*spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()"
           ".getInputArguments())\n")
    env = {**own_jvm_environment(), "IMAGEPIPE_SPARK_MASTER": "local[1]"}
    printed = subprocess.run([sys.executable, "-c", job], env=env, check=True, capture_output=True,
                             text=True).stdout.splitlines()
    time_zone, jvm_arguments = printed[-2], printed[-1].split()
    assert {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", f"-XX:SharedArchiveFile={archive}"} <= set(jvm_arguments)
    assert time_zone == "UTC"  # the base conf still applies beside them


def test_a_local_job_loads_sparks_classes_from_the_class_archive(tmp_path):
    archive = jvm_class_archive.build()
    options = driver_conf("local[1]", {})["spark.driver.extraJavaOptions"]
    assert options == f"{SHORT_JVM_OPTIONS} -XX:SharedArchiveFile={archive}"
    job = tmp_path / "job.py"
    job.write_text("from pyspark.sql import SparkSession\n"
                   "SparkSession.builder.getOrCreate().range(8).selectExpr('sum(id)').collect()\n")
    class_log = tmp_path / "classes.log"
    # The class path every job's driver gets (the lake's jars after Spark's own), which the archive is checked against.
    classpath = tables.classpath_conf()["spark.driver.extraClassPath"]
    subprocess.run([str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", "--conf",
                    f"spark.driver.extraJavaOptions={options} -Xlog:class+load=info:file={class_log}",
                    "--conf", f"spark.driver.extraClassPath={classpath}", str(job)],
                   env=own_jvm_environment(), check=True, capture_output=True)
    # Lambdas' classes are made at run time, never loaded from a jar or an archive.
    spark_classes = [line for line in class_log.read_text().splitlines()
                     if " org.apache.spark." in line and "$$Lambda$" not in line]
    from_archive = [line for line in spark_classes if "source: shared objects file (top)" in line]
    assert len(spark_classes) > 1000 and len(from_archive) > 0.9 * len(spark_classes)


def test_without_a_class_archive_a_local_job_starts_with_the_short_jvm_options_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert driver_conf("local[2]", {}) == {"spark.driver.extraJavaOptions": SHORT_JVM_OPTIONS}
