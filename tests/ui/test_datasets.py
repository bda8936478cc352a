"""The pages with two datasets: each dataset's runs open on its own lake folder, and each model's rollback form
triggers its own dataset's rollback DAG."""

from __future__ import annotations

import pytest

from imagepipe.records import PromotionRecord

from .model_records import build
from .test_pages import run_url

HOLIDAY = "holiday"


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """The default dataset's records and a second dataset's, in one lake and registry, both declared."""
    root = tmp_path_factory.mktemp("datasets")
    (root / "datasets.toml").write_text(f'[datasets.{HOLIDAY}]\nsource_uri = "s3://my-photos/holiday/"\n')
    lake_root = str(root / "lake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEPIPE_DATASETS_FILE", str(root / "datasets.toml"))
        patch.setenv("IMAGEPIPE_LAKE_ROOT", lake_root)
        patch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
        default = build(lake_root)
        # The holiday dataset's runs have the same ids but nothing of the default dataset's but the registry root.
        holiday = build(lake_root, dataset=HOLIDAY)
        holiday.lake.write_record(holiday.run(3), PromotionRecord(3, True, previous=1))
        yield default, holiday


def model_section(page: str, model: str) -> str:
    return page.split(f"<h2>{model}</h2>", 1)[1].split("<h2>", 1)[0]


def test_a_datasets_run_tab_reads_its_own_lake_folder(viewer, two_datasets):
    default, holiday = two_datasets
    assert holiday.lake.root.endswith("/lake/datasets/holiday")

    page = viewer.get(run_url(holiday.run(3), dag_id=f"image_classifier_pipeline__{HOLIDAY}"))
    assert page.status_code == 200
    assert "holiday version 3" in page.text and "image_classifier version" not in page.text
    assert "image_classifier version 3" in viewer.get(run_url(default.run(3))).text

    unknown = viewer.get(run_url(holiday.run(3), dag_id="image_classifier_pipeline__elsewhere"))
    assert unknown.status_code == 404 and "train no model" in unknown.text


def test_each_models_rollback_form_triggers_its_own_datasets_rollback_dag(user, two_datasets):
    page = user.get("/imagepipe/models").text

    assert 'action="/imagepipe/dags/image_classifier_rollback/runs"' in model_section(page, "image_classifier")
    assert f'action="/imagepipe/dags/image_classifier_rollback__{HOLIDAY}/runs"' in model_section(page, HOLIDAY)
    assert f"/dags/image_classifier_pipeline__{HOLIDAY}/runs/" in model_section(page, HOLIDAY)


@pytest.fixture
def holiday_reader(monkeypatch):
    """Airflow's auth manager deciding per DAG, as one with per-DAG permissions does (FAB's): the viewer may read the
    holiday dataset's DAGs and no other; every other decision is the simple auth manager's own."""
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    decide = manager.is_authorized_dag

    def per_dag(**request):
        details = request.get("details")
        if request["user"].get_name() == "viewer" and not (details and str(details.id).endswith(f"__{HOLIDAY}")):
            return False
        return decide(**request)

    monkeypatch.setattr(manager, "is_authorized_dag", per_dag)


def test_a_user_who_may_read_one_datasets_dags_sees_that_datasets_model_only(viewer, two_datasets, holiday_reader):
    default, holiday = two_datasets

    page = viewer.get("/imagepipe/models").text
    assert f"<h2>{HOLIDAY}</h2>" in page and "<h2>image_classifier</h2>" not in page

    assert viewer.get(f"/imagepipe/models/{HOLIDAY}/versions/1").status_code == 200
    assert viewer.get(run_url(holiday.run(3), dag_id=f"image_classifier_pipeline__{HOLIDAY}")).status_code == 200
    for path in ["/imagepipe/models/image_classifier/versions/1",
                 "/imagepipe/models/image_classifier/versions/1/files/metadata.json", run_url(default.run(3))]:
        refused = viewer.get(path)
        assert refused.status_code == 403, path
        assert "<h1>Not allowed</h1>" in refused.text and "may not read image_classifier_pipeline" in refused.text
        assert "0.9000" not in refused.text
