"""promote_model on a registry on a local path and on the S3 endpoint: backfills keep the champion unless allowed, and
a failed verdict is promoted only with a reason."""

from __future__ import annotations

import logging

import pytest
from unit.registry_helpers import *  # noqa: F403 (the fixture tiny_model)
from unit.registry_helpers import MODEL, failing_verdict, passing_verdict, saved_version

from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.records import CandidateRecord, GateRecord
from imagepipe.registry import Registry
from spark_jobs import promote_model


@pytest.fixture(params=["path", "s3"])
def root(request, tmp_path) -> str:
    """A registry root on a local path, then on the S3 endpoint."""
    if request.param == "path":
        return str(tmp_path / "registry")
    return f"s3://{request.getfixturevalue('s3_bucket')}/registry"


def candidate_run(root: str, lake_root: str, run_id: str, verdict: dict, tiny_model) -> int:
    registry = saved_version(root, tiny_model, run_id)
    version = registry.version_for_run(run_id)
    registry.write_document(version, "verdict", verdict)
    Lake(lake_root).write_record(run_id, CandidateRecord(version, MODEL))
    return version


def promote(run_id: str, root: str, lake_root: str, *extra: str) -> None:
    promote_model.main(["--run-id", run_id, "--lake-root", lake_root, "--registry-uri", root, *extra])


def test_a_backfill_run_does_not_promote_unless_allowed(root, lake_root, tiny_model, caplog):
    candidate_run(root, lake_root, "backfill__2026-11-20T00:00:00+00:00", passing_verdict(None), tiny_model)

    with caplog.at_level(logging.INFO, logger="promote_model"):
        promote("backfill__2026-11-20T00:00:00+00:00", root, lake_root, "--run-type", "backfill",
                "--promote-on-backfill", "False")

    assert Registry(root, MODEL).champion() is None
    assert "backfill run backfill__2026-11-20T00:00:00+00:00: version 1 (verdict PASSED) is not promoted" in caplog.text
    promote("backfill__2026-11-20T00:00:00+00:00", root, lake_root, "--run-type", "backfill",
            "--promote-on-backfill", "True")
    assert Registry(root, MODEL).champion_version() == 1


def test_the_job_forces_a_failed_verdict_only_with_a_reason(root, lake_root, tiny_model):
    candidate_run(root, lake_root, "manual__forced", failing_verdict(None), tiny_model)

    with pytest.raises(InputError, match="failed its gate, not promoted: FAIL min_accuracy.*--force-reason"):
        promote("manual__forced", root, lake_root, "--force-reason", " ")
    assert Registry(root, MODEL).champion() is None

    promote("manual__forced", root, lake_root, "--force-reason", "the test split is known to be mislabelled")

    [entry] = Registry(root, MODEL).history()
    assert (entry.version, entry.kind, entry.run_id) == (1, "forced", "manual__forced")
    assert entry.reason == "the test split is known to be mislabelled"


def test_in_the_pipeline_the_gates_decision_forces_a_failed_verdict(root, lake_root, tiny_model):
    version = candidate_run(root, lake_root, "manual__gated", failing_verdict(None), tiny_model)
    lake = Lake(lake_root)
    lake.write_record("manual__gated", GateRecord(version, passed=False, forced_reason=None))

    with pytest.raises(InputError, match="failed its gate, not promoted"):
        promote("manual__gated", root, lake_root)  # the gate did not force it
    lake.write_record("manual__gated", GateRecord(version, passed=False, forced_reason="labels fixed upstream"))
    promote("manual__gated", root, lake_root)

    [entry] = Registry(root, MODEL).history()
    assert (entry.version, entry.kind, entry.reason) == (version, "forced", "labels fixed upstream")


def test_a_version_whose_model_file_changed_since_evaluation_is_not_promoted(tmp_path, lake_root, tiny_model):
    root = str(tmp_path / "registry")
    candidate_run(root, lake_root, "manual__tampered", passing_verdict(None), tiny_model)
    [data_file] = (tmp_path / "registry" / MODEL / "versions" / "1" / "model").glob("stages/*/data/*.parquet")
    data_file.write_bytes(data_file.read_bytes() + b"tampered")

    with pytest.raises(InputError, match="version 1 is corrupted: model/stages/.* does not match its recorded sha256"):
        promote("manual__tampered", root, lake_root)
    assert Registry(root, MODEL).champion_version() is None
