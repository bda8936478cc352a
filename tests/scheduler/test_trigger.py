"""The pipeline DAG on a real Airflow (api-server, scheduler, dag-processor, LocalExecutor), triggered as users
trigger it: through the REST API v2 with a conf, and refused with a message when the conf is invalid."""

from __future__ import annotations

import uuid

import pytest
from .airflow_stack import DAG_ID, SMALL_RUN, champion, run_document

from imagepipe import sample_data
from imagepipe.object_store import s3_client

pytestmark = pytest.mark.scheduler


def upload(bucket: str, per_class: int, seed: int) -> int:
    return sample_data.upload(s3_client(), bucket, "images", sample_data.generate(per_class, seed))


def test_a_run_triggered_through_the_rest_api_with_conf_promotes_the_first_champion(airflow_stack):
    bucket = f"trigger-{uuid.uuid4().hex[:8]}"
    count = upload(bucket, per_class=8, seed=1)
    airflow_stack.unpause(DAG_ID)

    run_id = airflow_stack.trigger(DAG_ID, {**SMALL_RUN, "source_uri": f"s3://{bucket}/images/"})
    airflow_stack.wait_for_success(DAG_ID, [run_id])

    assert run_document(airflow_stack, run_id, "ingest")["ingested"] == count
    assert champion(airflow_stack) == 1


@pytest.mark.parametrize("conf, named", [
    ({"backbone": "nope"}, "nope"),
    ({"image_size": 8}, "minimum of 32"),
])
def test_a_trigger_with_invalid_conf_is_refused_with_a_message_and_creates_no_run(airflow_stack, conf, named):
    runs_before = airflow_stack.runs(DAG_ID)

    status, answer = airflow_stack.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})

    assert status == 400, answer
    assert named in str(answer["detail"])
    assert airflow_stack.runs(DAG_ID) == runs_before
