"""imagepipe's pages on the real api-server of a running Airflow: refused to anonymous requests, served to logged-in
users, and the Models page's rollback form carried out by the rollback DAG's run, recorded as the user who posted it.
(The pages' content, in detail: tests/ui.)"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
from ui.model_records import build

from .airflow_stack import AirflowStack

pytestmark = pytest.mark.scheduler

ROLLBACK_DAG = "image_classifier_rollback"
FORM = f"/imagepipe/dags/{ROLLBACK_DAG}/runs"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s3_env = {name: os.environ[name] for name in
              ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    users = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer"}
    with AirflowStack(tmp_path_factory.mktemp("ui"), s3_env, extra_env=users) as stack:
        stack.wait_for_dag(ROLLBACK_DAG)
        yield stack


@pytest.fixture(scope="module")
def records(stack):
    """Three runs' records and versions in the stack's own lake and registry (tests/ui/model_records.py)."""
    return build(str(stack.lake))


def token(stack, username: str) -> str:
    passwords = json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())
    return stack.request("POST", "/auth/token", {"username": username, "password": passwords[username]},
                         auth=False)["access_token"]


def fetch(stack, method: str, path: str, session: str | None = None, form: dict | None = None) -> tuple[int, str]:
    """Status and text of a page, as a browser asks for it: with the session cookie when logged in, and a form post
    naming the page's own origin."""
    headers = {"Origin": stack.url}
    if session is not None:
        headers["Cookie"] = f"_token={session}"
    data = None
    if form is not None:
        data = "&".join(f"{name}={quote(value)}" for name, value in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(stack.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def pages(records) -> list[str]:
    version = "/imagepipe/models/image_classifier/versions/1"
    return ["/imagepipe/", "/imagepipe/models", version, f"{version}/files/report.html",
            f"{version}/files/confusion_matrix.png",
            f"/imagepipe/runs/image_classifier_pipeline/{quote(records.run(2), safe='')}"]


def test_every_page_is_refused_to_anonymous_requests_and_served_to_a_logged_in_user(stack, records):
    viewer = token(stack, "viewer")
    for path in pages(records):
        assert fetch(stack, "GET", path)[0] == 401, path
        assert fetch(stack, "GET", path, session=viewer)[0] == 200, path
    assert fetch(stack, "POST", FORM, form={"reason": "anonymous rollback"})[0] == 401


def test_a_viewer_cannot_roll_back_and_a_rollback_posted_from_the_models_page_runs_as_its_user(stack, records):
    registry = records.registry
    assert registry.champion_version() == 1
    status, _ = fetch(stack, "POST", FORM, session=token(stack, "viewer"), form={"reason": "a viewer tries"})
    assert status == 403

    stack.unpause(ROLLBACK_DAG)
    status, page = fetch(stack, "POST", FORM, session=token(stack, "admin"),
                         form={"target_version": "3", "reason": "version 1 misses the night images"})

    assert status == 201, page
    [run] = stack.runs(ROLLBACK_DAG)
    stack.wait_for_success(ROLLBACK_DAG, [run["dag_run_id"]], timeout=300)
    entry = registry.champion()
    assert (entry["version"], entry["kind"], entry["user"], entry["reason"]) == (
        3, "rollback", "admin", "version 1 misses the night images")
    _, models = fetch(stack, "GET", "/imagepipe/models", session=token(stack, "viewer"))
    assert "by admin: version 1 misses the night images" in " ".join(models.split())
