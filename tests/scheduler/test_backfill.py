"""`airflow backfill create` on a production-shaped Airflow (api-server, scheduler, dag-processor, LocalExecutor,
metadata in a real PostgreSQL server): each backfill run ingests exactly its own data interval, backfills keep the
champion a manual run promoted, and reprocessing an interval doubles nothing."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from imagepipe import sample_data
from imagepipe.object_store import s3_client

from .airflow_stack import DAG_ID, SMALL_RUN, champion, lake_images, run_document

pytestmark = pytest.mark.scheduler


def test_a_backfill_ingests_each_interval_once_keeps_the_champion_and_reprocessing_doubles_nothing(start_airflow):
    # Backfill windows are the DAG's data intervals, and objects get their LastModified at upload: the schedule is a
    # cron with seconds firing every 15 s in the next minute or two only, so each "day" is an interval the test can
    # upload into, and no scheduled interval of the next hour holds the test's uploads.
    first = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=12)
    fires = [first + timedelta(seconds=15 * index) for index in range(4)]
    schedule = " ".join(",".join(sorted({str(getattr(fire, unit)) for fire in fires}, key=int))
                        for unit in ("minute", "hour", "day", "month"))
    schedule += " * " + ",".join(sorted({str(fire.second) for fire in fires}, key=int))
    bucket, own_bucket = f"backfill-{uuid.uuid4().hex[:8]}", f"champion-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=bucket)
    before_upload = datetime.now(timezone.utc)
    champion_images = sample_data.upload(s3_client(), own_bucket, "images", sample_data.generate(per_class=8, seed=9))
    # Explicit, not from the ingest watermark: the window holds these uploads whatever ran before.
    champion_window = {"window_start": (before_upload - timedelta(seconds=1)).isoformat(),
                       "window_end": (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()}
    # No limit on the drop against the champion: every backfill candidate passes its gate, so the champion staying
    # put is the backfill rule's doing, not the gate's.
    conf = json.dumps({**SMALL_RUN, "source_uri": f"s3://{bucket}/images/", "max_drop": None})
    days = [list(sample_data.generate(per_class=8, seed=10 + day)) for day in range(3)]
    # Uploads go on while Airflow starts.
    late = []
    uploads = threading.Thread(target=upload_in_intervals, args=(bucket, days, fires, late), daemon=True)
    uploads.start()
    stack = start_airflow(IMAGEPIPE_SCHEDULE=schedule)
    uploads.join()
    assert not late, f"uploads of days {late} overran their interval"
    pause_until(fires[3])
    # The champion comes first, from a run of the DAG in the CLI (`airflow dags test`) on images of its own: the DAG
    # stays paused until the backfill exists, or unpausing would start the interval the scheduler chose when it first
    # parsed the DAG, which may be one the backfill must take.
    stack.airflow("dags", "test", DAG_ID, "--conf",
                  json.dumps({**SMALL_RUN, **champion_window, "source_uri": f"s3://{own_bucket}/images/"}), timeout=900)
    assert champion(stack) == 1

    stack.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", fires[0].isoformat(),
                  "--to-date", fires[2].isoformat(), "--dag-run-conf", conf)
    stack.unpause(DAG_ID)
    backfill_runs = wait_for_backfill(stack)

    assert len(backfill_runs) == 3
    assert stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert stack.metadata_rows("SELECT run_id FROM dag_run WHERE backfill_id IS NOT NULL ORDER BY run_id") == [
        (run,) for run in backfill_runs]
    for run, (start, end), images in zip(backfill_runs, itertools.pairwise(fires), days, strict=True):
        report = run_document(stack, run, "ingest")
        assert (report["window"]["start"], report["window"]["end"]) == (start.isoformat(), end.isoformat())
        assert report["ingested"] == len(images)
    lake = lake_images(stack)
    assert len(lake) == champion_images + sum(map(len, days)) == len({row["sha256"] for row in lake})
    for run in backfill_runs:  # each passed its gate, and promotion declined because the run is a backfill
        assert run_document(stack, run, "promotion") == {
            "version": run_document(stack, run, "candidate")["version"], "changed": False, "skipped": "backfill run"}
    assert champion(stack) == 1

    stack.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", fires[1].isoformat(),
                  "--to-date", fires[1].isoformat(), "--reprocess-behavior", "completed",
                  "--dag-run-conf", conf)
    assert wait_for_backfill(stack) == backfill_runs  # the same run, cleared and run again

    assert run_document(stack, backfill_runs[1], "ingest")["ingested"] == len(days[1])
    assert sorted(lake_images(stack), key=lambda row: row["key"]) == sorted(lake, key=lambda row: row["key"])
    assert champion(stack) == 1


def upload_in_intervals(bucket: str, days: list[list[sample_data.SampleImage]], fires: list[datetime],
                        late: list[int]) -> None:
    """Upload day i's images inside [fires[i], fires[i+1]), under names unique across days; days that overran go
    to `late`."""
    client = s3_client()
    for day, (images, start) in enumerate(zip(days, fires[:len(days)], strict=True)):
        pause_until(start + timedelta(seconds=1))
        for image in images:
            client.put_object(Bucket=bucket, Key=f"images/{image.label}/day{day}_{image.name}",
                              Body=image.content)
        if datetime.now(timezone.utc) >= fires[day + 1]:
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
