"""The DAGs' template macros, rendered when a task runs: the run's type and ingest window, and the object store's
endpoint from its Airflow connection."""

from __future__ import annotations

from imagepipe.windows import WATERMARK

INTERVAL_RUN_TYPES = ("scheduled", "backfill")
S3_CONNECTION = "imagepipe_s3"


def run_type(dag_run) -> str:
    """The run's type by its name (scheduled, backfill, manual...). Templates need this macro: Jinja renders
    `dag_run.run_type`, an enum, as "DagRunType.BACKFILL", which no job recognises as a backfill."""
    return getattr(dag_run.run_type, "value", dag_run.run_type)


def window_start(dag_run, params) -> str:
    """Scheduled and backfill runs start at their data interval; manual runs at the window_start param or, by
    default, at the ingest watermark (everything not ingested yet)."""
    if params.get("window_start"):
        return params["window_start"]
    if run_type(dag_run) in INTERVAL_RUN_TYPES and dag_run.data_interval_start is not None:
        return dag_run.data_interval_start.isoformat()
    return WATERMARK


def window_end(dag_run, params) -> str:
    """Scheduled and backfill runs end at their data interval's end; manual runs at the window_end param or, by
    default, at the moment the run was triggered (fixed for the run, so retries see the same window)."""
    if params.get("window_end"):
        return params["window_end"]
    if run_type(dag_run) in INTERVAL_RUN_TYPES and dag_run.data_interval_end is not None:
        return dag_run.data_interval_end.isoformat()
    return dag_run.run_after.isoformat()


def s3_endpoint_url(conn_id: str = S3_CONNECTION) -> str:
    """The object store's endpoint from the Airflow connection `imagepipe_s3` (its extra `endpoint_url`), or '' when
    there is no such connection: the jobs then use AWS_ENDPOINT_URL, or AWS itself. Credentials stay with the
    standard AWS chain; the connection only says where the store is."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id).extra_dejson.get("endpoint_url", "")
    except AirflowNotFoundException:
        return ""
