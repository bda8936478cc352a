"""The Models page's rollback form triggers the rollback DAG through Airflow, as the logged-in user: Airflow's
permission to trigger it, its param validation and its audit log apply, and the page itself moves nothing."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from .conftest import login
from .model_records import build

ROLLBACK_DAG = "image_classifier_rollback"
FORM = f"/imagepipe/dags/{ROLLBACK_DAG}/runs"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    lake_root = str(tmp_path_factory.mktemp("rollback") / "lake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEPIPE_LAKE_ROOT", lake_root)
        patch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
        yield build(lake_root)


def rollback_runs() -> dict[str, object]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == ROLLBACK_DAG)).all()
        return {run.run_id: (run.conf, run.triggering_user_name, run.run_type, run.state) for run in runs}


def audit_log(run_owner: str) -> list[tuple]:
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(select(Log).where(Log.owner == run_owner, Log.event == "trigger_dag_run")).all()
        return [(row.dag_id, row.owner) for row in rows]


def test_the_models_page_offers_a_rollback_to_former_champions_to_who_may_trigger_it(user, viewer, records):
    page = user.get("/imagepipe/models").text

    assert f'action="{FORM}"' in page
    # Only versions that have been champion; the champion's predecessor first chosen.
    assert re.findall(r'<option value="(\d*)"( selected)?>', page) == [("3", " selected")]
    assert f'action="{FORM}"' not in viewer.get("/imagepipe/models").text  # a viewer may not trigger it


def test_no_form_is_offered_without_a_former_champion(user, tmp_path, monkeypatch):
    from .model_records import build_first_champion_only

    monkeypatch.setenv("IMAGEPIPE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
    build_first_champion_only(str(tmp_path / "lake"))

    page = user.get("/imagepipe/models").text

    assert "Champion: " in page and "<form" not in page


def test_a_user_who_may_trigger_it_rolls_back_through_airflow_as_themselves(user, records):
    champion = records.registry.champion()
    before = rollback_runs()

    answer = user.post(FORM, data={"target_version": "3", "reason": "version 1 misses the night images"})

    assert answer.status_code == 201, answer.text
    new = {run_id: run for run_id, run in rollback_runs().items() if run_id not in before}
    assert list(new.values()) == [({"target_version": 3, "reason": "version 1 misses the night images"}, "user",
                                   "manual", "queued")]
    run_id = next(iter(new))
    assert f'href="/dags/{ROLLBACK_DAG}/runs/{run_id.replace(":", "%3A").replace("+", "%2B")}"' in answer.text
    assert (ROLLBACK_DAG, "user") in audit_log("user")
    # The form triggers the DAG; the champion moves only when its run does.
    assert records.registry.champion() == champion


def test_a_viewer_may_read_but_not_trigger_a_rollback(viewer, records):
    before = rollback_runs()

    answer = viewer.post(FORM, data={"reason": "a viewer tries to roll back"})

    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html") and "<h1>Not allowed</h1>" in answer.text
    assert rollback_runs() == before


@pytest.mark.parametrize("origin", ["https://elsewhere.example", None])
def test_a_form_post_from_another_site_or_of_unknown_origin_is_refused(airflow_app, user, records, origin):
    client = login(airflow_app, "user")
    if origin is None:
        del client.headers["Origin"]
    else:
        client.headers["Origin"] = origin
    before = rollback_runs()

    answer = client.post(FORM, data={"reason": "posted from another site"})

    assert answer.status_code == 403
    assert rollback_runs() == before


@pytest.mark.parametrize("form, status, refusal", [
    # The DAG's own param schema: a reason of at least 5 characters.
    ({"reason": "no"}, 400, "Invalid input for param reason: 'no' is too short"),
    ({}, 400, "Invalid input for param reason: '' is too short"),
    ({"reason": "a good reason", "target_version": "two"}, 400, "target version 'two' is not a version number"),
    # The rollback job's own lines, from the registry's rule.
    ({"reason": "a good reason", "target_version": "2"}, 409,
     "version 2 of image_classifier has never been champion, so there is nothing to roll back to"),
    ({"reason": "a good reason", "target_version": "9"}, 409, "image_classifier has no version 9 in "),
    ({"reason": "a good reason", "target_version": "1"}, 409, "version 1 already is the champion of image_classifier"),
], ids=["short_reason", "no_reason", "not_a_number", "never_champion", "no_such_version", "the_champion"])
def test_a_refused_form_triggers_nothing_logs_no_trigger_and_says_why_on_a_page(user, records, form, status, refusal):
    before, logged = rollback_runs(), audit_log("user")

    answer = user.post(FORM, data=form)

    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html") and "<h1>Rollback not triggered</h1>" in answer.text
    assert refusal in html.unescape(answer.text)
    assert rollback_runs() == before
    assert audit_log("user") == logged


def test_no_other_dag_is_triggered_from_these_pages(user, records):
    answer = user.post("/imagepipe/dags/image_classifier_pipeline/runs", data={"reason": "a side door"})

    assert answer.status_code == 404
    assert "only a rollback DAG (image_classifier_rollback or image_classifier_rollback__&lt;dataset&gt;) is " \
           "triggered from these pages, not image_classifier_pipeline" in answer.text


def test_a_rollback_whose_run_failed_shows_on_the_models_page(user, viewer, records):
    """A rollback the form accepted can still fail in its run (the champion moved meanwhile): the Models page says so,
    with the run, its target, who and why."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    before = rollback_runs()
    assert user.post(FORM, data={"target_version": "3", "reason": "back to the night model"}).status_code == 201
    [run_id] = [run_id for run_id in rollback_runs() if run_id not in before]
    assert "Last rollback failed" not in viewer.get("/imagepipe/models").text  # queued, not failed
    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.dag_id == ROLLBACK_DAG, DagRun.run_id == run_id)
                        .values(state="failed"))

    page = viewer.get("/imagepipe/models").text

    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert f"Last rollback failed: run {run_id} (to version 3, by user: back to the night model)" in text
    assert records.registry.champion_version() == 1
