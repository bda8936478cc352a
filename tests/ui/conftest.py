"""Airflow's own api-server app, built in this process as `airflow api-server` builds it (the project's plugins
folder, the simple auth manager, a migrated SQLite metadata database holding the project's DAGs), and clients logged
in as its users; and the records the pages read, on a local path and on the S3 endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .model_records import build

PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).parent / "airflow"
# The simple auth manager's roles: a viewer reads every DAG; a user may also trigger them.
USERS = {"viewer": "viewer", "user": "user"}
ORIGIN = "http://testserver"  # the TestClient's own server, as a browser's form post names it


def _airflow(*args: str) -> None:
    result = subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="session")
def airflow_app():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{u}:{r}" for u, r in USERS.items()))
        patch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT / "dags"))
        _airflow("db", "migrate")
        _airflow("dags", "reserialize")
        from airflow.api_fastapi.app import create_app

        yield create_app()


def login(app, username: str | None) -> TestClient:
    """A client holding the user's session cookie, as the Airflow UI's browser does; None: anonymous."""
    client = TestClient(app, headers={"Origin": ORIGIN})
    if username is not None:
        home = Path(os.environ["AIRFLOW_HOME"])
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        answer = client.post("/auth/token", json={"username": username, "password": passwords[username]})
        assert answer.status_code == 201, answer.text
        client.cookies.set("_token", answer.json()["access_token"])
    return client


@pytest.fixture(scope="session")
def viewer(airflow_app) -> TestClient:
    return login(airflow_app, "viewer")


@pytest.fixture(scope="session")
def user(airflow_app) -> TestClient:
    return login(airflow_app, "user")


@pytest.fixture(scope="session")
def anonymous(airflow_app) -> TestClient:
    return login(airflow_app, None)


@pytest.fixture(scope="module", params=["local", "s3"])
def records(request, tmp_path_factory):
    """The records, in a lake (with its registry) on a local path or on the S3 endpoint, where the app reads them."""
    if request.param == "local":
        lake_root = str(tmp_path_factory.mktemp("ui") / "lake")
    else:
        from imagepipe.object_store import s3_client

        request.getfixturevalue("s3_endpoint")
        bucket = f"ui-{uuid.uuid4().hex[:8]}"
        s3_client().create_bucket(Bucket=bucket)
        lake_root = f"s3://{bucket}/lake"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEPIPE_LAKE_ROOT", lake_root)
        patch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
        yield build(lake_root)
