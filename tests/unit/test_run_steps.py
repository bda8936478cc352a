"""The gate task's reading of a candidate's verdict: what it logs, the decision it records for promote, and its
refusals."""

import logging

import pytest

from imagepipe.airflow.run_steps import verdict_passed
from imagepipe.errors import InputError, MissingRecordError
from imagepipe.lake import Lake
from imagepipe.records import CandidateRecord, GateRecord
from imagepipe.registry import Registry

MODEL = "image_classifier"
RUN_ID = "scheduled__2026-01-01T00:00:00+00:00"


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

    with caplog.at_level(logging.INFO, logger="imagepipe.airflow.run_steps"):
        assert verdict_passed(str(tmp_path), RUN_ID, MODEL) is True

    assert caplog.messages == ["PASS min_accuracy: accuracy 0.9 >= 0.7", "version 1 passed its gate"]


def test_failing_verdict_skips_promotion_and_says_so(tmp_path, caplog):
    verdict = {
        "passed": False,
        "checks": [check("min_accuracy", True, "accuracy 0.8 >= 0.7"),
                   check("not_worse_than_champion", False, "0.8 < 0.9")],
    }
    record_candidate(tmp_path, verdict)

    with caplog.at_level(logging.INFO, logger="imagepipe.airflow.run_steps"):
        assert verdict_passed(str(tmp_path), RUN_ID, MODEL) is False

    assert caplog.messages == [
        "PASS min_accuracy: accuracy 0.8 >= 0.7",
        "FAIL not_worse_than_champion: 0.8 < 0.9",
        "version 1 failed its gate: promotion is skipped",
    ]


def test_a_forced_run_lets_a_failed_verdict_through_saying_so(tmp_path, caplog):
    record_candidate(tmp_path, {"passed": False, "checks": [check("min_accuracy", False, "accuracy 0.5 < 0.7")]})

    with caplog.at_level(logging.INFO, logger="imagepipe.airflow.run_steps"):
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
