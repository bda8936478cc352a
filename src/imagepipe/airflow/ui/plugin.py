"""The Airflow plugin: imagepipe's FastAPI app under /imagepipe, the Models nav entry, a run tab on every DAG run (the
pipeline's runs have an outcome to show) and a "Model report" link on the pipeline's evaluate and promote tasks.

Every Airflow process loads plugins, each task's process too, so this module stays light: FastAPI, Jinja2 and the
pages' code are imported at the app's first request, in the api-server alone.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from imagepipe.airflow.job_operators import LocalJobOperator, SparkJobOperator
from imagepipe.airflow.ui import PIPELINE_DAG, URL_PREFIX

# Paths relative to the Airflow UI's base URL (no leading slash), so they hold behind a proxy's path prefix too.
UI_PATH = URL_PREFIX.strip("/")
MODEL_TASKS = ("evaluate", "promote")


class LazyApp:
    """An ASGI app that builds imagepipe's FastAPI app at its first request (see the module's doc)."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            from imagepipe.airflow.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def version_path(model_name: str, version: int) -> str:
    return f"{UI_PATH}/models/{model_name}/versions/{version}"


class ModelReportLink(BaseOperatorLink):
    """The version page of the model the task's run trained. The api-server computes it when the task is shown,
    from the run's candidate record; a task of another DAG, or a run that trained nothing, has no link."""

    name = "Model report"
    operators = [SparkJobOperator, LocalJobOperator]

    def get_link(self, operator, *, ti_key) -> str:
        if operator.task_id not in MODEL_TASKS:
            return ""
        from imagepipe import datasets
        from imagepipe.lake import Lake
        from imagepipe.records import CandidateRecord

        dataset = datasets.of_dag(ti_key.dag_id, PIPELINE_DAG)
        if dataset is None:
            return ""
        candidate = Lake(dataset.lake_root()).find_record(ti_key.run_id, CandidateRecord)
        return "" if candidate is None else version_path(candidate.model_name or dataset.model_name, candidate.version)


class ImagepipeUIPlugin(AirflowPlugin):
    name = "imagepipe_ui"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "imagepipe"}]
    external_views = [
        {"name": "Models", "href": f"{UI_PATH}/models", "destination": "nav", "url_route": "imagepipe-models"},
        # Airflow fills in the run's DAG and id; the page says so when the DAG is not the pipeline.
        {"name": "Model run", "href": f"{UI_PATH}/runs/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "imagepipe-run"},
    ]
    operator_extra_links = [ModelReportLink()]
