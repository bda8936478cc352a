import re

import pytest

from imagepipe.errors import InputError, MissingRecordError
from imagepipe.lake import Lake, run_key
from imagepipe.records import CandidateRecord, PromotionRecord

MANUAL_RUN = "manual__2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "run_id, key",
    [
        (MANUAL_RUN, "manual__2026-01-01T00~3a00~3a00~2b00~3a00"),
        ("scheduled__2026-11-27T06:00:00.123456+00:00", "scheduled__2026-11-27T06~3a00~3a00.123456~2b00~3a00"),
        ("my run/with slash", "my~20run~2fwith~20slash"),
        ("plain-run_1.2", "plain-run_1.2"),
    ],
)
def test_run_key_is_path_safe(run_id, key):
    assert run_key(run_id) == key


def test_distinct_run_ids_get_distinct_keys():
    run_ids = ["a:b", "a+b", "a_b", "a~3ab", "a b"]
    assert len({run_key(run_id) for run_id in run_ids}) == len(run_ids)


def test_empty_run_id_is_refused_with_an_example():
    with pytest.raises(InputError, match="run id is empty; pass the Airflow run id, e.g. manual__"):
        run_key("")


@pytest.mark.parametrize("root", ["s3://bucket/lake", "s3://bucket/lake/"])
def test_lake_layout_under_object_storage_root(root):
    lake = Lake(root)

    assert lake.images.location == "s3a://bucket/lake/images"
    assert lake.quarantine.location == "s3a://bucket/lake/quarantine"
    features = lake.features("resnet18-0123456789abcdef")
    assert features.location == "s3a://bucket/lake/features/resnet18-0123456789abcdef"
    assert features.name == "features_resnet18_0123456789abcdef"
    assert lake.feature_space_document("resnet18-0123456789abcdef") == (
        "s3://bucket/lake/feature_spaces/resnet18-0123456789abcdef.json")
    assert lake.registry == "s3://bucket/lake/registry"
    assert lake.watermark == "s3://bucket/lake/_state/ingest_watermark.json"
    assert lake.run_document(MANUAL_RUN, "window") == "s3://bucket/lake/runs/manual__2026-01-01T00~3a00~3a00~2b00~3a00/window.json"


def test_run_documents_round_trip_on_a_local_lake(tmp_path):
    lake = Lake(str(tmp_path))

    lake.write_record(MANUAL_RUN, CandidateRecord(3, "pets"))

    assert lake.read_record(MANUAL_RUN, CandidateRecord) == CandidateRecord(3, "pets")
    assert (tmp_path / "runs" / "manual__2026-01-01T00~3a00~3a00~2b00~3a00" / "candidate.json").is_file()


def test_missing_run_document_says_which_step_has_not_run(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_record(MANUAL_RUN, PromotionRecord(1, False, skipped="backfill run"))  # another step's record

    expected = f"run {MANUAL_RUN} has no candidate record in {tmp_path}; run the step that writes it first"
    with pytest.raises(MissingRecordError, match=f"^{re.escape(expected)}$"):
        lake.read_record(MANUAL_RUN, CandidateRecord)


def test_missing_record_is_an_input_error_and_a_lookup_error():
    # InputError: jobs end with one line and status 1; LookupError: callers may treat it as "not found".
    assert issubclass(MissingRecordError, InputError)
    assert issubclass(MissingRecordError, LookupError)


def test_runs_do_not_see_each_others_documents(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_record(MANUAL_RUN, CandidateRecord(1, "pets"))

    with pytest.raises(MissingRecordError):
        lake.read_record("manual__2026-01-02T00:00:00+00:00", CandidateRecord)


def test_the_deployments_lake_and_its_datasets_have_their_names_as_namespaces(monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_LAKE_ROOT", "s3a://imagepipe-lake/lake")

    assert Lake("s3://imagepipe-lake/lake/").images.identifier == "imagepipe.`default`.`images`"
    assert Lake("s3a://imagepipe-lake/lake/datasets/holiday").predictions("holiday").identifier == (
        "imagepipe.`holiday`.`predictions_holiday`")


def test_two_other_lakes_never_share_a_namespace(monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_LAKE_ROOT", "s3a://imagepipe-lake/lake")
    namespaces = {Lake(root).namespace for root in ("/tmp/a/lake", "/tmp/b/lake", "s3a://other/lake")}

    assert len(namespaces) == 3
    assert all(namespace.startswith("default_") for namespace in namespaces)
    assert Lake("/tmp/a/lake/datasets/holiday").namespace.startswith("holiday_")
