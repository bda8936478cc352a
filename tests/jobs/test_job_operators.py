"""The job tasks. Killing a Spark task (Airflow calls on_kill when the task times out or is killed) stops the whole
local Spark application: spark-submit's JVM, the job's Python driver and its Python workers, not the JVM alone. A
refusal fails a task at once, a crash is retried, for a Spark job and a local one alike."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from imagepipe.airflow.job_operators import LocalJobOperator, SparkJobOperator

SLOW_JOB = """
    import os, sys, time
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.parallelize(range(4), 2).map(lambda x: x).collect()  # starts Python workers
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(600)  # a long step in the driver's Python, as when it lists a large bucket
"""


def run_until_started(task, started: Path, timeout: float) -> tuple[threading.Thread, list[Exception]]:
    """Run task in a thread, as Airflow runs a task while on_kill may come, until the job writes its pid to
    `started`; the thread, and the error the task ends with (for the test to assert on)."""
    errors = []

    def run():
        try:
            task()
        except Exception as error:  # noqa: BLE001 - the test asserts on it
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not started.exists() or not started.read_text():
        assert thread.is_alive() and time.monotonic() < deadline, "the job did not start"
        time.sleep(0.2)
    return thread, errors


def test_on_kill_stops_spark_submit_and_every_process_of_the_job(tmp_path, monkeypatch):
    job, started = tmp_path / "slow_job.py", tmp_path / "driver.pid"
    job.write_text(textwrap.dedent(SLOW_JOB))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(
        {"conn_type": "spark", "host": "local[1]", "extra": {"deploy-mode": "client"}}))
    operator = SparkJobOperator(task_id="slow_job", job="slow_job", application_args=[str(started)],
                                conn_id="spark_default")
    # What execute does in client mode, without a task instance around it: the hook runs spark-submit and waits.
    operator._hook = operator._get_hook()
    submit, errors = run_until_started(lambda: operator._hook.submit(str(job)), started, timeout=180)
    spark_submit = psutil.Process(operator._hook._submit_sp.pid)
    application = [spark_submit, *spark_submit.children(recursive=True)]
    assert int(started.read_text()) in {process.pid for process in application}

    operator.on_kill()

    _, alive = psutil.wait_procs(application, timeout=30)
    assert alive == []
    submit.join(timeout=30)
    assert not submit.is_alive()
    assert "Cannot execute" in str(errors[0])  # the killed job fails its task instead of passing for done


REFUSING_JOB = """
    import sys
    print("refusing_job: error: no S3 credentials found: set AWS_PROFILE", file=sys.stderr)
    sys.exit(2)
"""
CRASHING_JOB = """
    raise RuntimeError("lost the executor")
"""
# Writes where it imported the library from, the code version the task handed it, and how its driver JVM (the
# parent of the Python driver in client mode) was started.
REPORTING_JOB = """
    import os, sys, imagepipe, psutil
    jvm = " ".join(psutil.Process(os.getppid()).cmdline())
    open(sys.argv[1], "w").write(imagepipe.__file__ + "\\n" + os.environ["IMAGEPIPE_CODE_VERSION"] + "\\n" + jvm)
"""


def spark_job_task(job: Path, args: list[str]):
    return SparkJobOperator(task_id="job", job=job.stem, application_args=args, name="job", conn_id="spark_default")


def local_job_task(job: Path, args: list[str]):
    return LocalJobOperator(task_id="job", job=job.stem, application_args=args)


def _execute(tmp_path, monkeypatch, source: str, *args: str, task=spark_job_task):
    job = tmp_path / "job.py"
    job.write_text(textwrap.dedent(source))
    monkeypatch.setenv("IMAGEPIPE_SPARK_JOBS_DIR", str(tmp_path))  # where the worker keeps its jobs
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("IMAGEPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGEPIPE_CODE_VERSION", "v-test")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(
        {"conn_type": "spark", "host": "local[1]", "extra": {"deploy-mode": "client"}}))
    task(job, list(args)).execute({})


@pytest.mark.parametrize("task", [spark_job_task, local_job_task])
def test_a_refusal_fails_the_task_at_once_with_the_jobs_line(tmp_path, monkeypatch, task):
    from airflow.sdk.exceptions import AirflowFailException

    # AirflowFailException: Airflow fails the task without using its retries.
    with pytest.raises(AirflowFailException) as refused:
        _execute(tmp_path, monkeypatch, REFUSING_JOB, task=task)
    assert str(refused.value) == "refusing_job: error: no S3 credentials found: set AWS_PROFILE"


@pytest.mark.parametrize("task", [spark_job_task, local_job_task])
def test_a_crash_stays_a_fault_that_airflow_retries(tmp_path, monkeypatch, task):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    with pytest.raises(AirflowException) as failed:
        _execute(tmp_path, monkeypatch, CRASHING_JOB, task=task)
    assert not isinstance(failed.value, AirflowFailException)
    assert "lost the executor" in str(failed.value)


def test_on_kill_stops_a_local_job(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_SPARK_JOBS_DIR", str(tmp_path))
    job, started = tmp_path / "slow_job.py", tmp_path / "job.pid"
    job.write_text("import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    operator = local_job_task(job, [str(started)])
    run, errors = run_until_started(lambda: operator.execute({}), started, timeout=60)
    job_process = psutil.Process(int(started.read_text()))

    operator.on_kill()

    # The task's own wait reaps the job (a second waiter here would take its exit status from it).
    run.join(timeout=30)
    assert not run.is_alive() and not job_process.is_running()
    assert "exited with status -15" in str(errors[0])  # the killed job fails its task instead of passing for done


def test_the_task_ships_the_library_and_its_code_version_when_it_executes(tmp_path, monkeypatch):
    report = tmp_path / "report.txt"
    _execute(tmp_path, monkeypatch, REPORTING_JOB, str(report))
    imported_from, code_version, driver_jvm = report.read_text().splitlines()
    archive = next((tmp_path / "data" / "py_files").glob("imagepipe-*.zip"))
    assert imported_from.startswith(str(archive)), imported_from
    assert code_version == "v-test"
    assert "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" in driver_jvm  # a local job's short JVM: no optimising JIT


LOCAL = {"conn_type": "spark", "host": "local[2]"}
CLUSTER = {"conn_type": "spark", "host": "spark://cluster", "port": 7077}


@pytest.mark.parametrize(("connection", "job", "user_conf", "java_options"), [
    (LOCAL, "ingest_images", {}, "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"),
    # Training's logistic regression runs in the JVM: it keeps the optimising compiler.
    (LOCAL, "train_classifier", {}, "-XX:+UseSerialGC"),
    (LOCAL, "ingest_images", {"spark.driver.extraJavaOptions": "-Xss4m"}, "-Xss4m"),
    (CLUSTER, "ingest_images", {}, None),
])
def test_only_jobs_on_a_local_master_get_the_short_jvm_options_and_a_users_own_stand(
        monkeypatch, tmp_path, connection, job, user_conf, java_options):
    from imagepipe import jars, settings

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("IMAGEPIPE_JARS_DIR", str(jars.cache_dir()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # where no class archive is built
    operator = SparkJobOperator(task_id="job", job=job, conf=user_conf, conn_id="spark_default")
    conf = operator._get_hook()._conf
    assert conf.get("spark.driver.extraJavaOptions") == java_options
    # Whatever the master, the job gets the lake: its catalog and the pinned jars on every JVM's class path.
    assert conf["spark.sql.catalog.imagepipe.uri"] == settings.catalog_uri()
    assert conf["spark.driver.extraClassPath"] == conf["spark.executor.extraClassPath"] == ":".join(jars.paths())
