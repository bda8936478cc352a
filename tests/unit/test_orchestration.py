import enum
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from imagepipe.airflow.orchestration import run_type, verdict_passed, window_end, window_start
from imagepipe.errors import InputError, MissingRecordError
from imagepipe.lake import Lake
from imagepipe.records import CandidateRecord, GateRecord, IngestRecord
from imagepipe.registry import Registry

UTC = timezone.utc
INTERVAL_START = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL_END = datetime(2026, 1, 2, tzinfo=UTC)
TRIGGERED_AT = datetime(2026, 1, 5, 9, 30, 15, 250000, tzinfo=UTC)
MODEL = "image_classifier"
RUN_ID = "scheduled__2026-01-01T00:00:00+00:00"


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


def record_candidate(lake_root, verdict: dict | None) -> None:
    lake = Lake(str(lake_root))
    registry = Registry(lake.registry, MODEL)
    version = registry.allocate_version(RUN_ID)
    lake.write_record(RUN_ID, CandidateRecord(version, MODEL))
    if verdict is not None:
        registry.write_document(version, "verdict", verdict)


def check(name: str, passed: bool, detail: str) -> dict:
    return {"name": name, "metric": "accuracy", "threshold": 0.7, "observed": 0.0, "passed": passed,
            "detail": detail}


def test_passing_verdict_lets_promotion_run_and_logs_every_check(tmp_path, caplog):
    record_candidate(tmp_path, {"passed": True, "checks": [check("min_accuracy", True, "accuracy 0.9 >= 0.7")]})

    with caplog.at_level(logging.INFO, logger="imagepipe.airflow.orchestration"):
        assert verdict_passed(str(tmp_path), RUN_ID, MODEL) is True

    assert caplog.messages == ["PASS min_accuracy: accuracy 0.9 >= 0.7", "version 1 passed its gate"]


def test_failing_verdict_skips_promotion_and_says_so(tmp_path, caplog):
    verdict = {
        "passed": False,
        "checks": [check("min_accuracy", True, "accuracy 0.8 >= 0.7"),
                   check("not_worse_than_champion", False, "0.8 < 0.9")],
    }
    record_candidate(tmp_path, verdict)

    with caplog.at_level(logging.INFO, logger="imagepipe.airflow.orchestration"):
        assert verdict_passed(str(tmp_path), RUN_ID, MODEL) is False

    assert caplog.messages == [
        "PASS min_accuracy: accuracy 0.8 >= 0.7",
        "FAIL not_worse_than_champion: 0.8 < 0.9",
        "version 1 failed its gate: promotion is skipped",
    ]


def test_a_forced_run_lets_a_failed_verdict_through_saying_so(tmp_path, caplog):
    record_candidate(tmp_path, {"passed": False, "checks": [check("min_accuracy", False, "accuracy 0.5 < 0.7")]})

    with caplog.at_level(logging.INFO, logger="imagepipe.airflow.orchestration"):
        assert verdict_passed(str(tmp_path), RUN_ID, MODEL, force_promote=True, force_reason="labels fixed upstream")

    assert caplog.messages == [
        "FAIL min_accuracy: accuracy 0.5 < 0.7",
        "version 1 failed its gate: promotion is forced by the run's force_promote param: labels fixed upstream",
    ]
    # The decision promote carries out, in the run's gate record.
    assert Lake(str(tmp_path)).read_record(RUN_ID, GateRecord) == GateRecord(1, False, "labels fixed upstream")


def test_the_gate_records_a_pass_and_a_refusal_without_a_force_reason(tmp_path):
    record_candidate(tmp_path, {"passed": False, "checks": [check("min_accuracy", False, "accuracy 0.5 < 0.7")]})

    assert verdict_passed(str(tmp_path), RUN_ID, MODEL, force_promote=False, force_reason="left in the form") is False
    assert Lake(str(tmp_path)).read_record(RUN_ID, GateRecord) == GateRecord(1, False, None)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_force_without_a_reason_is_refused(tmp_path, reason):
    record_candidate(tmp_path, {"passed": False, "checks": [check("min_accuracy", False, "accuracy 0.5 < 0.7")]})

    with pytest.raises(InputError, match="force_promote is on but force_reason is empty"):
        verdict_passed(str(tmp_path), RUN_ID, MODEL, force_promote=True, force_reason=reason)


def test_the_gate_reads_the_verdict_from_another_registry_root(tmp_path):
    registry = Registry(str(tmp_path / "elsewhere"), MODEL)
    version = registry.allocate_version(RUN_ID)
    Lake(str(tmp_path / "lake")).write_record(RUN_ID, CandidateRecord(version, MODEL))
    registry.write_document(version, "verdict", {"passed": True, "checks": []})

    assert verdict_passed(str(tmp_path / "lake"), RUN_ID, MODEL, registry_uri=str(tmp_path / "elsewhere")) is True


def test_candidate_without_verdict_is_an_error_naming_the_version(tmp_path):
    record_candidate(tmp_path, verdict=None)

    with pytest.raises(RuntimeError, match=f"version 1 of {MODEL} has no verdict: evaluate did not write one"):
        verdict_passed(str(tmp_path), RUN_ID, MODEL)


def test_run_without_candidate_record_says_training_has_not_run(tmp_path):
    with pytest.raises(MissingRecordError, match="has no candidate record"):
        verdict_passed(str(tmp_path), RUN_ID, MODEL)


def _ingest_report(lake, run_id, ingested):
    window = {"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-02T00:00:00+00:00"}
    lake.write_record(run_id, IngestRecord(
        source_uri="s3://b/p/", window=window, listed=5, outside_window=0, unlabeled=0, fetched=5, bytes=5000,
        ingested=ingested, duplicates=5 - ingested, conflicts=0, rejected={}, labels={}, images_snapshot=None,
        quarantined=[], seconds=1.0, objects_per_s=5.0))


def test_a_window_without_new_images_skips_the_rest_of_the_run_saying_why(tmp_path):
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe.airflow.orchestration import skip_without_new_images

    lake = Lake(str(tmp_path))
    _ingest_report(lake, RUN_ID, ingested=0)
    with pytest.raises(AirflowSkipException, match=r"brought no new images \(listed 5, duplicates 5, rejected 0\)"):
        skip_without_new_images(str(tmp_path), {"params": {}, "run_id": RUN_ID})
    # Retraining on the lake's images is asked for explicitly.
    skip_without_new_images(str(tmp_path), {"params": {"require_new_images": False}, "run_id": RUN_ID})
    _ingest_report(lake, RUN_ID, ingested=2)
    skip_without_new_images(str(tmp_path), {"params": {}, "run_id": RUN_ID})


def test_fine_tuning_runs_only_when_the_run_asks_for_it_and_its_window_brought_images(tmp_path):
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe.airflow.orchestration import skip_unless_finetune

    lake = Lake(str(tmp_path))
    _ingest_report(lake, RUN_ID, ingested=2)
    with pytest.raises(AirflowSkipException, match=r"finetune param is off: .* uses the weights param \(DEFAULT\)"):
        skip_unless_finetune(str(tmp_path), {"params": {"weights": "DEFAULT"}, "run_id": RUN_ID})
    skip_unless_finetune(str(tmp_path), {"params": {"finetune": True}, "run_id": RUN_ID})
    _ingest_report(lake, RUN_ID, ingested=0)
    with pytest.raises(AirflowSkipException, match="brought no new images"):
        skip_unless_finetune(str(tmp_path), {"params": {"finetune": True}, "run_id": RUN_ID})


def test_the_s3_endpoint_comes_from_the_airflow_connection_when_there_is_one(monkeypatch):
    from imagepipe.airflow.orchestration import s3_endpoint_url

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
