"""The pipeline DAG on the laptop's Airflow (api-server, scheduler, dag-processor, LocalExecutor, SQLite), triggered as
users trigger it: through the REST API v2 with a conf, refused with a message when the conf is invalid, and retried
cleanly after a Spark task times out mid-run, the run then promoting its candidate. (The same trigger on PostgreSQL,
production's database: test_backfill.py.)"""

from __future__ import annotations

import hashlib
import signal
import time
import uuid

import psutil
import pytest

from imagepipe import sample_data
from imagepipe.object_store import s3_client

from .airflow_stack import DAG_ID, SMALL_RUN, champion, lake_images, run_document


# The timeout test comes first: it is the module's long test, and make test hands a worker its next group of tests
# as this module's last one starts (tests/conftest.py).
def test_a_spark_task_that_times_out_stops_its_application_and_its_retry_ingests_each_image_once(airflow_stack):
    bucket = f"timeout-{uuid.uuid4().hex[:8]}"
    images = list(sample_data.generate(per_class=8, seed=7))
    sample_data.upload(s3_client(), bucket, "images", iter(images))
    airflow_stack.unpause(DAG_ID)

    run_id = airflow_stack.trigger(DAG_ID, {**SMALL_RUN, "source_uri": f"s3://{bucket}/images/"})
    spark_submit = running_spark_job("ingest_images.py", run_id)
    application = [spark_submit, *spark_submit.children(recursive=True)]
    # The task's execution_timeout is a SIGALRM timer in the task process: firing it now is the timeout, early.
    spark_submit.parent().send_signal(signal.SIGALRM)

    _, alive = psutil.wait_procs(application, timeout=60)
    assert alive == [], f"still running after the timeout: {[process.cmdline() for process in alive]}"
    airflow_stack.wait_for_success(DAG_ID, [run_id])

    assert airflow_stack.task_instances(DAG_ID, run_id)["ingest"]["try_number"] == 2
    report = run_document(airflow_stack, run_id, "ingest")
    assert (report["ingested"], report["duplicates"], report["rejected"]) == (len(images), 0, {})
    uploaded = {hashlib.sha256(image.content).hexdigest() for image in images}
    in_lake = [row["sha256"] for row in lake_images(airflow_stack) if row["sha256"] in uploaded]
    assert sorted(in_lake) == sorted(uploaded)
    # The triggered run went on to the end: its candidate is the champion.
    assert champion(airflow_stack) == run_document(airflow_stack, run_id, "candidate")["version"]


@pytest.mark.parametrize("conf, named", [
    ({"backbone": "nope"}, "nope"),
    ({"image_size": 8}, "minimum of 32"),
])
def test_a_trigger_with_invalid_conf_is_refused_with_a_message_and_creates_no_run(airflow_stack, conf, named):
    runs_before = airflow_stack.runs(DAG_ID)

    status, answer = airflow_stack.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})

    assert status == 400, answer
    assert named in str(answer["detail"])
    assert airflow_stack.runs(DAG_ID) == runs_before
def running_spark_job(script: str, run_id: str, timeout: float = 300) -> psutil.Process:
    """spark-submit's JVM (client mode: the application's driver) for the run's `script`, once the job's Python driver
    runs under it; the JVM's parent is the task. Not another run's (unpausing also starts a scheduled one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = process.info["cmdline"] or []
            if (process.info["name"] != "java" or "org.apache.spark.deploy.SparkSubmit" not in cmdline
                    or run_id not in cmdline):
                continue
            if any(part.endswith(script) for part in children_cmdlines(process)):
                return process
        time.sleep(0.2)
    raise AssertionError(f"no Spark application ran {script} within {timeout:.0f} s")


def children_cmdlines(process: psutil.Process) -> list[str]:
    """Every word of the command lines of the process's children, skipping the ones that are gone or zombies (the
    JVM leaves a finished shell unreaped)."""
    words = []
    try:
        children = process.children()
    except psutil.NoSuchProcess:
        return words
    for child in children:
        try:
            words.extend(child.cmdline())
        except psutil.NoSuchProcess:  # ZombieProcess included
            pass
    return words
