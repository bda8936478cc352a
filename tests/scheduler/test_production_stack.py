"""The pipeline DAGs on a production-shaped Airflow (api-server, scheduler, dag-processor, LocalExecutor, metadata in a
real PostgreSQL server), with two datasets: their first runs, triggered through the REST API at once, each promote a
champion trained on their own images only (the default one's after its ingest timed out mid-run and was retried),
and each champion starts its own dataset's batch scoring; a trigger the form refuses creates no run; then `airflow
backfill create` runs each data interval of the default dataset on its own images once, keeps its champion,
reprocessing an interval doubles nothing, and the other dataset is left as it was. One stack serves all of it: the
backfill starts from the champions the triggered runs promoted."""

from __future__ import annotations

import hashlib
import itertools
import json
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psutil
import pytest

from imagepipe.dev import sample_data
from imagepipe.object_store import s3_client
from imagepipe.records import PromotionRecord

from .airflow_stack import (
    DAG_ID,
    SECOND,
    SECOND_BUCKET,
    SMALL_RUN,
    AirflowStack,
    champion,
    lake_images,
    run_record,
)

# The backfill's intervals are this long: enough to upload a day's images into, short enough not to wait for.
INTERVAL = timedelta(seconds=15)


SECOND_DAG = f"{DAG_ID}__{SECOND}"
SCORING_DAGS = {"image_batch_scoring": "image_classifier", f"image_batch_scoring__{SECOND}": SECOND}
SECOND_CLASSES = ("forest", "night_sky")


@dataclass
class TriggeredRuns:
    stack: AirflowStack
    run_id: str
    uploaded: int
    uploaded_sha256: list[str]
    left_running_after_timeout: list[list[str]]  # command lines of the timed-out ingest's processes still alive
    second_run_id: str
    second_uploaded: int
    scoring_runs: dict[str, str]  # scoring DAG id -> its one run


@pytest.fixture(scope="module")
def first_champion(postgres_stack) -> TriggeredRuns:
    """Both datasets' first runs, triggered through the REST API together (the default one's with a conf, its ingest
    timed out once mid-run), waited for until they succeeded, and the one batch-scoring run each new champion
    started."""
    stack, client = postgres_stack, s3_client()
    bucket = f"trigger-{uuid.uuid4().hex[:8]}"
    images = list(sample_data.generate(per_class=8, seed=1))
    uploaded = sample_data.upload(client, bucket, "images", iter(images))
    second_uploaded = sample_data.upload(client, SECOND_BUCKET, "images",
                                         sample_data.generate(per_class=16, seed=2, classes=SECOND_CLASSES))
    # What each dataset's batch scoring labels.
    scoring_bucket = stack.env["IMAGEPIPE_SCORING_URI"].split("/")[2]
    sample_data.upload(client, scoring_bucket, "unlabelled", sample_data.generate(per_class=1, seed=3))
    sample_data.upload(client, SECOND_BUCKET, "unlabelled", sample_data.generate(per_class=1, seed=4))
    for dag_id in (DAG_ID, SECOND_DAG, *SCORING_DAGS):
        stack.unpause(dag_id)

    run_id = stack.trigger(DAG_ID, {**SMALL_RUN, "source_uri": f"s3://{bucket}/images/"})
    second_run_id = stack.trigger(SECOND_DAG, SMALL_RUN)
    left_running = time_out_spark_task("ingest_images.py", run_id)
    stack.wait_for_success(DAG_ID, [run_id])
    stack.wait_for_success(SECOND_DAG, [second_run_id])
    scoring_runs = {dag_id: wait_for_one_run(stack, dag_id) for dag_id in SCORING_DAGS}
    return TriggeredRuns(stack, run_id, uploaded, [hashlib.sha256(image.content).hexdigest() for image in images],
                         left_running, second_run_id, second_uploaded, scoring_runs)


def time_out_spark_task(script: str, run_id: str) -> list[list[str]]:
    """Time out the run's Spark task running `script` while its application runs; the command lines of the
    application's processes still alive a minute later. The task's execution_timeout is a SIGALRM timer in the task
    process: firing it now is the timeout, early."""
    spark_submit = running_spark_job(script, run_id)
    application = [spark_submit, *spark_submit.children(recursive=True)]
    spark_submit.parent().send_signal(signal.SIGALRM)
    _, alive = psutil.wait_procs(application, timeout=60)
    return [process.cmdline() for process in alive]


def wait_for_one_run(stack: AirflowStack, dag_id: str, timeout: float = 600) -> str:
    """The DAG's one run, once it succeeded (asset-triggered runs start after the asset event is processed)."""
    deadline = time.monotonic() + timeout
    while not (runs := stack.runs(dag_id)):
        assert time.monotonic() < deadline, f"{dag_id} never ran\n{stack.log_tail('scheduler')}"
        time.sleep(2)
    [run] = runs
    stack.wait_for_success(dag_id, [run["dag_run_id"]])
    return run["dag_run_id"]


def model_labels(stack: AirflowStack, model: str, version: int) -> list[str]:
    return json.loads((stack.lake / "registry" / model / "versions" / str(version) / "metadata.json").read_text())[
        "labels"]


# The backfill comes first: it is the module's long test, and make test hands a worker its next group of tests as
# this module's last one starts (tests/conftest.py).
def test_a_backfill_ingests_each_interval_once_keeps_the_champion_and_reprocessing_doubles_nothing(first_champion):
    stack = first_champion.stack
    assert champion(stack) == 1
    second_images, second_runs = lake_images(stack, SECOND), stack.runs(SECOND_DAG)
    # Nothing may run while the schedule changes: the DAG's runs finish, then it is paused until its backfill exists.
    stack.wait_for_runs(DAG_ID, [run["dag_run_id"] for run in stack.runs(DAG_ID)])
    stack.pause(DAG_ID)

    # Backfill windows are the DAG's data intervals, and objects get their LastModified at upload: the schedule
    # becomes a cron with seconds firing three times in the next minute only, so each "day" is an interval the test
    # can upload into, and no scheduled interval of the next hour holds the test's uploads.
    fires = [datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=3) + INTERVAL * index
             for index in range(3)]
    schedule = " ".join(",".join(sorted({str(getattr(fire, unit)) for fire in fires}, key=int))
                        for unit in ("minute", "hour", "day", "month"))
    schedule += " * " + ",".join(sorted({str(fire.second) for fire in fires}, key=int))
    bucket = f"backfill-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=bucket)
    # No limit on the drop against the champion: every backfill candidate passes its gate, so the champion staying
    # put is the backfill rule's doing, not the gate's.
    conf = json.dumps({**SMALL_RUN, "source_uri": f"s3://{bucket}/images/", "max_drop": None})
    days = [list(sample_data.generate(per_class=8, seed=10 + day)) for day in range(2)]
    # Uploads go on while Airflow restarts with the new schedule, as a user's would after changing its setting.
    late = []
    uploads = threading.Thread(target=upload_in_intervals, args=(bucket, days, fires, late), daemon=True)
    uploads.start()
    stack.restart(IMAGEPIPE_SCHEDULE=schedule)
    stack.wait_for_schedule(DAG_ID, schedule)
    uploads.join()
    assert not late, f"uploads of days {late} overran their interval"
    pause_until(fires[-1])

    stack.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", fires[0].isoformat(),
                  "--to-date", fires[-2].isoformat(), "--dag-run-conf", conf)
    stack.unpause(DAG_ID)
    backfill_runs = wait_for_backfill(stack)

    assert len(backfill_runs) == len(days)
    assert stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert stack.metadata_rows("SELECT run_id FROM dag_run WHERE backfill_id IS NOT NULL ORDER BY run_id") == [
        (run,) for run in backfill_runs]
    for run, (start, end), images in zip(backfill_runs, itertools.pairwise(fires), days, strict=True):
        report = run_record(stack, run, "ingest")
        assert (report.window["start"], report.window["end"]) == (start.isoformat(), end.isoformat())
        assert report.ingested == len(images)
    lake = lake_images(stack)
    assert len(lake) == first_champion.uploaded + sum(map(len, days)) == len({row["sha256"] for row in lake})
    for run in backfill_runs:  # each passed its gate, and promotion declined because the run is a backfill
        assert run_record(stack, run, "promotion") == PromotionRecord(
            run_record(stack, run, "candidate").version, changed=False, skipped="backfill run")
    assert champion(stack) == 1

    stack.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", fires[-2].isoformat(),
                  "--to-date", fires[-2].isoformat(), "--reprocess-behavior", "completed",
                  "--dag-run-conf", conf)
    assert wait_for_backfill(stack) == backfill_runs  # the same run, cleared and run again

    assert run_record(stack, backfill_runs[-1], "ingest").ingested == len(days[-1])
    assert sorted(lake_images(stack), key=lambda row: row["key"]) == sorted(lake, key=lambda row: row["key"])
    assert champion(stack) == 1

    # The other dataset saw none of it: no run, no image, the same champion, no scoring run.
    assert stack.runs(SECOND_DAG) == second_runs
    assert lake_images(stack, SECOND) == second_images
    assert champion(stack, SECOND) == 1
    assert {dag_id: len(stack.runs(dag_id)) for dag_id in SCORING_DAGS} == dict.fromkeys(SCORING_DAGS, 1)


def test_a_triggered_runs_spark_task_that_times_out_stops_its_application_and_its_retry_ingests_each_image_once(
        first_champion):
    stack, run_id = first_champion.stack, first_champion.run_id

    assert first_champion.left_running_after_timeout == []
    assert stack.task_instances(DAG_ID, run_id)["ingest"]["try_number"] == 2
    report = run_record(stack, run_id, "ingest")
    assert (report.ingested, report.duplicates, report.rejected) == (first_champion.uploaded, 0, {})
    uploaded = set(first_champion.uploaded_sha256)
    assert sorted(row["sha256"] for row in lake_images(stack) if row["sha256"] in uploaded) == sorted(uploaded)
    # The triggered run, with its conf, went on to the end: its candidate is the first champion.
    assert champion(stack) == run_record(stack, run_id, "candidate").version == 1


@pytest.mark.parametrize("conf, named", [
    ({"backbone": "nope"}, "nope"),
    ({"image_size": 8}, "minimum of 32"),
])
def test_a_trigger_with_invalid_conf_is_refused_with_a_message_and_creates_no_run(postgres_stack, conf, named):
    runs_before = postgres_stack.runs(DAG_ID)

    status, answer = postgres_stack.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None,
                                                                                    "conf": conf})

    assert status == 400, answer
    assert named in str(answer["detail"])
    assert postgres_stack.runs(DAG_ID) == runs_before


def test_two_datasets_run_side_by_side_each_trained_on_its_own_images_and_scored_by_its_own_champion(first_champion):
    stack = first_champion.stack
    runs = {dag_id: next(run for run in stack.runs(dag_id) if run["dag_run_id"] == run_id)
            for dag_id, run_id in ((DAG_ID, first_champion.run_id), (SECOND_DAG, first_champion.second_run_id))}
    assert max(run["start_date"] for run in runs.values()) < min(run["end_date"] for run in runs.values())

    assert run_record(stack, first_champion.second_run_id, "ingest", SECOND).ingested == \
        first_champion.second_uploaded == len(lake_images(stack, SECOND))
    assert {row["key"].split("/")[1] for row in lake_images(stack, SECOND)} == set(SECOND_CLASSES)
    assert (champion(stack), champion(stack, SECOND)) == (1, 1)
    assert model_labels(stack, "image_classifier", 1) == sorted(sample_data.CLASSES)
    assert model_labels(stack, SECOND, 1) == sorted(SECOND_CLASSES)

    for dag_id, model in SCORING_DAGS.items():
        run_id = first_champion.scoring_runs[dag_id]
        events = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
        assert [event["name"] for event in events] == [f"imagepipe_champion_{model}"]
        dataset = None if model == "image_classifier" else model
        assert run_record(stack, run_id, "scoring", dataset).model_name == model


def upload_in_intervals(bucket: str, days: list[list[sample_data.SampleImage]], fires: list[datetime],
                        late: list[int]) -> None:
    """Upload day i's images inside [fires[i], fires[i+1]), under names unique across days; days that overran go
    to `late`."""
    client = s3_client()
    for day, (images, (start, end)) in enumerate(zip(days, itertools.pairwise(fires), strict=True)):
        pause_until(start + timedelta(seconds=1))
        for image in images:
            client.put_object(Bucket=bucket, Key=f"images/{image.label}/day{day}_{image.name}",
                              Body=image.content)
        if datetime.now(timezone.utc) >= end:
            late.append(day)


def pause_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(timezone.utc)).total_seconds()))


def wait_for_backfill(stack, timeout: float = 1800) -> list[str]:
    """Wait until the scheduler has marked every backfill of the DAG complete; the backfill runs' ids in date order,
    each checked successful."""
    deadline = time.monotonic() + timeout
    while any(backfill["completed_at"] is None
              for backfill in stack.request("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["backfills"]):
        assert time.monotonic() < deadline, f"backfill unfinished after {timeout:.0f} s"
        time.sleep(2)
    run_ids = [run["dag_run_id"] for run in stack.runs(DAG_ID) if run["run_type"] == "backfill"]
    stack.wait_for_success(DAG_ID, run_ids)
    return sorted(run_ids)


def running_spark_job(script: str, run_id: str, timeout: float = 300) -> psutil.Process:
    """spark-submit's JVM (client mode: the application's driver) for the run's `script`, once the job's Python driver
    runs under it; the JVM's parent is the task. Not another run's."""
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
