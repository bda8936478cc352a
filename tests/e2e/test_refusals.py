"""What `make run` shows when the run cannot go on: the one line saying what was wrong, at once, not a traceback's
tail after three tries with backoff."""

from __future__ import annotations

from pathlib import Path

import pytest
from receivers import CREDENTIALS, http_server

pytestmark = pytest.mark.e2e
CREDENTIALS_LINE = ('ingest_images: error: no S3 credentials found: for the embedded endpoint run eval '
                    '"$(make -s s3-env)"; elsewhere set AWS_PROFILE, or AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY')


def test_a_source_without_credentials_fails_the_run_in_one_try_with_the_jobs_line(user_env, make, tmp_path):
    # No credentials anywhere boto3 looks: no variables, no files, no instance metadata.
    user_env.update({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                     "AWS_EC2_METADATA_DISABLED": "true"})

    with http_server() as (hook, connection):
        # The default dataset's run_failed subscription, from the environment, to a webhook connection.
        user_env.update({"IMAGEPIPE_NOTIFY_RUN_FAILED": "webhook:ops_hook", "AIRFLOW_CONN_OPS_HOOK": connection})
        result = make(user_env, "run", check=False)

    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == CREDENTIALS_LINE
    log = (Path(user_env["IMAGEPIPE_DATA_DIR"]) / "airflow" / "last-run.log").read_text()
    # The job printed its line once: one try, no retry; and the task failed with it, unmasked.
    assert sum(f"] {CREDENTIALS_LINE} [" in line for line in log.splitlines()) == 1
    assert f"AirflowFailException: {CREDENTIALS_LINE}" in log
    assert "******" not in log
    # The failed task was announced once, with the job's line and none of the webhook's credentials.
    [failure] = hook.payloads()
    assert (failure["event"], failure["dag_id"], failure["task_id"], failure["error"]) == (
        "run_failed", "image_classifier_pipeline", "ingest", CREDENTIALS_LINE)
    assert not any(secret in hook.posts[0][2] or secret in log for secret in CREDENTIALS)


@pytest.mark.parametrize(("conf", "line"), [
    ('{"preprocessing": ["median:4"]}', "Invalid input for param preprocessing: 'median:4' does not match"),
    ('{"backbone": "timm:resnet_nope"}', "Invalid input for param backbone: 'timm:resnet_nope' is not one of the "
                                         "values its trigger-form field lists"),
], ids=["preprocessing", "unknown_timm_model"])
def test_a_conf_the_trigger_form_refuses_ends_make_run_with_the_forms_line(user_env, make, conf, line):
    result = make(user_env, "run", f"CONF={conf}", check=False)

    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith(line) and len(first) < 300, result.stderr[:600]
