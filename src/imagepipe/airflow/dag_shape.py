"""What the DAG files build their DAGs from, at parse time: the ids, start and task policy every DAG of a dataset
shares, the datasets a DAG file builds DAGs for, a dataset's schedule, and the job tasks' docs."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from pathlib import Path


def dataset_dag(dataset, dag_file: str, execution_timeout: timedelta) -> dict:
    """The DAG arguments every DAG of a dataset shares: its id (the DAG file's name, suffixed by the dataset's), a
    fixed start, no catch-up, one run at a time, and the task policy: retries with exponential backoff, a timeout
    that stops a stuck task, and a run_failed notice when a task failed for good."""
    from imagepipe.airflow.notifications import on_task_failed

    return {
        "dag_id": dataset.suffixed(Path(dag_file).stem),
        "start_date": datetime(2026, 11, 1, tzinfo=timezone.utc),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "retries": 2,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            "execution_timeout": execution_timeout,
            "on_failure_callback": on_task_failed(dataset.name),
        },
    }


def datasets_for_dag_file(dag_id_base: str) -> list:
    """The datasets a DAG file builds its DAGs (`dag_id_base`, suffixed) for: all of them, except in a task's own
    process, where Airflow parses the file to run one DAG's task and only that DAG is built (its parsing context)."""
    from airflow.sdk import get_parsing_context

    from imagepipe import datasets

    wanted = get_parsing_context().dag_id
    every = datasets.load()
    return [dataset for dataset in every if dataset.suffixed(dag_id_base) == wanted] or every


def timetable(schedule: str, retrain_on=None):
    """A dataset's schedule as Airflow's: cron data intervals in UTC (a preset such as @daily is a cron too), or None
    for a dataset run by hand only; with an asset to retrain on (its drift alarms), each of that asset's events also
    starts a run, whose window is everything not ingested yet, like a manual run's."""
    from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable

    cron = None if schedule == "none" else CronDataIntervalTimetable(schedule, timezone="UTC")
    if retrain_on is None:
        return cron
    return [retrain_on] if cron is None else AssetOrTimeSchedule(timetable=cron, assets=[retrain_on])


@functools.cache  # one parse of each job's file, however many datasets' DAGs a DAG file builds
def job_doc(job: str) -> str:
    """A job's docstring as its task's doc_md, read from the file (importing the job would slow every DAG parse):
    what the DAG's own checkout says of it."""
    import ast

    from imagepipe import settings

    path = settings.spark_job(job)
    return f"Spark job `{path.parent.name}/{path.name}`.\n\n{ast.get_docstring(ast.parse(path.read_text()))}"
