"""The DAGs' template macros: the run's ingest window by run type and params, the run type as jobs compare it,
and the object store's endpoint from its Airflow connection."""

import enum
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from imagepipe.airflow.macros import run_type, window_end, window_start

UTC = timezone.utc
INTERVAL_START = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL_END = datetime(2026, 1, 2, tzinfo=UTC)
TRIGGERED_AT = datetime(2026, 1, 5, 9, 30, 15, 250000, tzinfo=UTC)


class RunType(enum.Enum):
    """Stands in for Airflow's DagRunType, an enum whose values are the run type names."""

    SCHEDULED = "scheduled"
    BACKFILL = "backfill"
    MANUAL = "manual"
    ASSET_TRIGGERED = "asset_triggered"


def dag_run(run_type, with_interval: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        run_type=run_type,
        data_interval_start=INTERVAL_START if with_interval else None,
        data_interval_end=INTERVAL_END if with_interval else None,
        run_after=TRIGGERED_AT,
    )


@pytest.mark.parametrize("run_type", [RunType.SCHEDULED, RunType.BACKFILL, "scheduled", "backfill"])
def test_interval_runs_take_their_data_interval(run_type):
    run = dag_run(run_type)

    assert window_start(run, {}) == "2026-01-01T00:00:00+00:00"
    assert window_end(run, {}) == "2026-01-02T00:00:00+00:00"


@pytest.mark.parametrize("run_type", [RunType.MANUAL, RunType.ASSET_TRIGGERED, "manual"])
def test_other_runs_take_everything_new_up_to_their_trigger_time(run_type):
    run = dag_run(run_type)

    assert window_start(run, {}) == "watermark"
    assert window_end(run, {}) == "2026-01-05T09:30:15.250000+00:00"


def test_interval_run_without_an_interval_falls_back_to_watermark_and_trigger_time():
    run = dag_run(RunType.SCHEDULED, with_interval=False)

    assert window_start(run, {}) == "watermark"
    assert window_end(run, {}) == "2026-01-05T09:30:15.250000+00:00"


@pytest.mark.parametrize("run_type", [RunType.MANUAL, RunType.SCHEDULED])
def test_window_params_win_over_run_type(run_type):
    params = {"window_start": "2025-06-01T00:00:00Z", "window_end": "2025-07-01T00:00:00Z"}

    assert window_start(dag_run(run_type), params) == "2025-06-01T00:00:00Z"
    assert window_end(dag_run(run_type), params) == "2025-07-01T00:00:00Z"


def test_empty_window_params_are_ignored():
    # The trigger form submits empty fields as empty strings or None.
    assert window_start(dag_run(RunType.MANUAL), {"window_start": "", "window_end": None}) == "watermark"
    assert window_end(dag_run(RunType.MANUAL),
                      {"window_start": "", "window_end": None}) == "2026-01-05T09:30:15.250000+00:00"


def test_the_s3_endpoint_comes_from_the_airflow_connection_when_there_is_one(monkeypatch):
    from imagepipe.airflow.macros import s3_endpoint_url

    monkeypatch.delenv("AIRFLOW_CONN_IMAGEPIPE_S3", raising=False)
    assert s3_endpoint_url() == ""
    monkeypatch.setenv("AIRFLOW_CONN_IMAGEPIPE_S3", '{"conn_type": "aws", "extra": {"endpoint_url": "http://minio:9000"}}')
    assert s3_endpoint_url() == "http://minio:9000"


def test_the_run_type_macro_gives_the_name_jobs_compare_not_the_enum_jinja_renders():
    from airflow.sdk.api.datamodels._generated import DagRunType
    from jinja2 import Template

    run = dag_run(DagRunType.BACKFILL)
    # What `--run-type {{ dag_run.run_type }}` gave the promote job under the scheduler: a backfill it did not know.
    assert Template("{{ dag_run.run_type }}").render(dag_run=run) == "DagRunType.BACKFILL"
    assert Template("{{ run_type(dag_run) }}").render(dag_run=run, run_type=run_type) == "backfill"
