"""The pre_execute hooks that skip the rest of a run, saying why: a window without new images, a run that does not
fine-tune."""


import pytest

from imagepipe.lake import Lake
from imagepipe.records import IngestRecord

RUN_ID = "scheduled__2026-01-01T00:00:00+00:00"


def _ingest_report(lake, run_id, ingested):
    window = {"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-02T00:00:00+00:00"}
    lake.write_record(run_id, IngestRecord(
        source_uri="s3://b/p/", window=window, listed=5, outside_window=0, unlabeled=0, fetched=5, bytes=5000,
        ingested=ingested, duplicates=5 - ingested, conflicts=0, rejected={}, labels={}, images_snapshot=None,
        quarantined=[], seconds=1.0, objects_per_s=5.0))


def test_a_window_without_new_images_skips_the_rest_of_the_run_saying_why(tmp_path):
    from airflow.sdk.exceptions import AirflowSkipException

    from imagepipe.airflow.task_guards import skip_without_new_images

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

    from imagepipe.airflow.task_guards import skip_unless_finetune

    lake = Lake(str(tmp_path))
    _ingest_report(lake, RUN_ID, ingested=2)
    with pytest.raises(AirflowSkipException, match=r"finetune param is off: .* uses the weights param \(DEFAULT\)"):
        skip_unless_finetune(str(tmp_path), {"params": {"weights": "DEFAULT"}, "run_id": RUN_ID})
    skip_unless_finetune(str(tmp_path), {"params": {"finetune": True}, "run_id": RUN_ID})
    _ingest_report(lake, RUN_ID, ingested=0)
    with pytest.raises(AirflowSkipException, match="brought no new images"):
        skip_unless_finetune(str(tmp_path), {"params": {"finetune": True}, "run_id": RUN_ID})
