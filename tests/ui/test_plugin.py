"""The plugin as Airflow sees it: its views in the UI's plugin list, the "Model report" link of the pipeline's evaluate
and promote tasks, and a load that imports nothing heavy into every Airflow process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest

from imagepipe.lake import Lake
from imagepipe.records import CandidateRecord

from .conftest import PROJECT, login

PIPELINE = "/api/v2/dags/image_classifier_pipeline"


@pytest.fixture(scope="module")
def admin(airflow_app, tmp_path_factory):
    """The user role triggers the pipeline (it stays queued: the DAG is paused), over an empty lake."""
    lake_root = str(tmp_path_factory.mktemp("links") / "lake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEPIPE_LAKE_ROOT", lake_root)
        yield login(airflow_app, "user"), Lake(lake_root)


def trigger_pipeline(client) -> str:
    answer = client.post(f"{PIPELINE}/dagRuns", json={"logical_date": None, "conf": {}})
    assert answer.status_code == 200, answer.text
    return answer.json()["dag_run_id"]


def links(client, run_id: str, task_id: str) -> dict:
    answer = client.get(f"{PIPELINE}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/links")
    assert answer.status_code == 200, answer.text
    return answer.json()["extra_links"]


def test_the_ui_lists_the_models_page_and_the_run_tab(viewer):
    answer = viewer.get("/api/v2/plugins")

    assert answer.status_code == 200
    plugin = next(plugin for plugin in answer.json()["plugins"] if plugin["name"] == "imagepipe_ui")
    views = {view["name"]: (view["href"], view["destination"]) for view in plugin["external_views"]}
    assert views == {"Models": ("imagepipe/models", "nav"),
                     "Model run": ("imagepipe/runs/{DAG_ID}/{RUN_ID}", "dag_run")}
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/imagepipe"]


def test_evaluate_and_promote_link_to_the_version_their_run_trained(admin):
    client, lake = admin
    run_id = trigger_pipeline(client)
    assert links(client, run_id, "evaluate") == {"Model report": None}  # nothing trained yet: no link

    lake.write_record(run_id, CandidateRecord(7, "image_classifier"))

    for task_id in ("evaluate", "promote"):
        assert links(client, run_id, task_id) == {"Model report": "imagepipe/models/image_classifier/versions/7"}
    assert links(client, run_id, "ingest") == {"Model report": None}


def test_loading_the_plugin_imports_nothing_heavy(tmp_path):
    """Every Airflow process loads the plugins, each task's process too: no Spark, torch, boto3 or pandas, nor
    FastAPI and the pages' code until the api-server serves a page (Jinja2 comes with Airflow itself)."""
    script = ("import json, sys\nfrom airflow import plugins_manager\n"
              "plugins, errors = plugins_manager._get_plugins()\n"
              "print(json.dumps({'plugins': [p.name for p in plugins], 'errors': errors, 'heavy': sorted(name for name "
              "in ('torch', 'pyspark', 'boto3', 'pandas', 'fastapi', 'imagepipe.airflow.ui.app') "
              "if name in sys.modules)}))")
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
           "AIRFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            check=True)

    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"plugins": ["imagepipe_ui"], "errors": {}, "heavy": []}
