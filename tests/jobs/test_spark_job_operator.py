"""Killing a Spark task (Airflow calls on_kill when the task times out or is killed) stops the whole local Spark
application: spark-submit's JVM, the job's Python driver and its Python workers, not the JVM alone."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil

from imagepipe.spark_submit import SparkJobOperator

SLOW_JOB = """
    import os, sys, time
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.parallelize(range(4), 2).map(lambda x: x).collect()  # starts Python workers
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(600)  # a long step in the driver's Python, as when it lists a large bucket
"""


def test_on_kill_stops_spark_submit_and_every_process_of_the_job(tmp_path, monkeypatch):
    job, started = tmp_path / "slow_job.py", tmp_path / "driver.pid"
    job.write_text(textwrap.dedent(SLOW_JOB))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(
        {"conn_type": "spark", "host": "local[1]", "extra": {"deploy-mode": "client"}}))
    operator = SparkJobOperator(task_id="slow_job", application=str(job), application_args=[str(started)],
                                conn_id="spark_default")
    # What execute does in client mode, without a task instance around it: the hook runs spark-submit and waits.
    operator._hook = operator._get_hook()
    errors = []

    def submit_job():
        try:
            operator._hook.submit(str(job))
        except Exception as error:  # noqa: BLE001 - the test asserts on it
            errors.append(error)

    submit = threading.Thread(target=submit_job, daemon=True)
    submit.start()
    deadline = time.monotonic() + 180
    while not started.exists() or not started.read_text():
        assert submit.is_alive() and time.monotonic() < deadline, "the job did not start"
        time.sleep(0.5)
    spark_submit = psutil.Process(operator._hook._submit_sp.pid)
    application = [spark_submit, *spark_submit.children(recursive=True)]
    assert int(started.read_text()) in {process.pid for process in application}

    operator.on_kill()

    _, alive = psutil.wait_procs(application, timeout=30)
    assert alive == []
    submit.join(timeout=30)
    assert not submit.is_alive()
    assert "Cannot execute" in str(errors[0])  # the killed job fails its task instead of passing for done
