"""The session a job makes when run by hand (python -m spark_jobs.<job>) or by the tests: on a local master its one
JVM starts with the short-job options, as a local job's spark-submit does under Airflow."""

from __future__ import annotations


def test_a_local_session_runs_its_jvm_without_the_optimising_jit(spark):
    jvm_arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                         .getInputArguments())
    assert "-XX:TieredStopAtLevel=1" in jvm_arguments and "-XX:+UseSerialGC" in jvm_arguments
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"  # the base conf still applies beside it
