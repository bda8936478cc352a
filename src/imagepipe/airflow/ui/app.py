"""imagepipe's FastAPI app, which Airflow's api-server mounts under /imagepipe (see plugin.py).

Airflow does not guard a plugin's app, so every route here depends on Airflow's own auth: an authenticated Airflow
user (an unknown path is a route too, so an anonymous request learns nothing from a 404), and each page on read access
to its own dataset's pipeline DAG: the Models page lists the models of the datasets the user may read, a version page
needs its model's dataset, a run tab its DAG.

The rollback form also needs Airflow's permission to trigger the rollback DAG, and is checked first with the rollback
DAG's params and the registry's own rule (what the rollback job would refuse is refused here, with its line, before
anything is triggered or written to the audit log); then it triggers the DAG with Airflow's own trigger code (the
run's triggering user, the audit log). The rollback itself is the DAG's work: nothing here writes to the registry.
Every refusal is a page in Airflow's frame, never a raw JSON body.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated
from urllib.parse import quote, urlsplit

import jinja2
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.dagbag import create_dag_bag
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, get_user, requires_access_dag
from airflow.api_fastapi.logging.decorators import action_logging
from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from imagepipe import datasets, params
from imagepipe.airflow.ui import PIPELINE_DAG, ROLLBACK_DAG, SCORING_DAG, URL_PREFIX, pages
from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.run_param import schema_error

# The pages show their own pictures and inline styles, run no script, post forms only here, and only Airflow's UI
# (same origin) may frame them.
PAGE_POLICY = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
               "frame-ancestors 'self'")
# A registry file is served as its bytes: an HTML report runs no script even if someone else wrote it, yet its
# pictures (same origin) load.
FILE_POLICY = "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.PackageLoader("imagepipe.airflow.ui", "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined))

trigger_rollback_dag = Depends(requires_access_dag("POST", DagAccessEntity.RUN))  # the dag_id of the path


def app_path(request: Request, *segments) -> str:
    """Path of a page of this app, each segment percent-encoded (names and run ids come from data)."""
    return request.scope.get("root_path", "") + "".join(f"/{quote(str(segment), safe='')}" for segment in segments)


def airflow_path(request: Request, *segments) -> str:
    """Path of a page of the Airflow UI that mounts this app."""
    base = request.scope.get("root_path", "").removesuffix(URL_PREFIX)
    return base + "".join(f"/{quote(str(segment), safe='')}" for segment in segments)


def render(request: Request, template: str, status_code: int = 200, **context) -> Response:
    helpers = {"link": lambda *segments: app_path(request, *segments),
               "airflow_link": lambda *segments: airflow_path(request, *segments)}
    return templates.TemplateResponse(request, template, {**helpers, **context}, status_code=status_code)


def message(request: Request, status_code: int, title: str, text: str) -> Response:
    return render(request, "message.html", status_code, title=title, text=text)


class Refused(Exception):
    """A request answered with a page saying why, before Airflow does anything for it."""

    def __init__(self, status_code: int, title: str, text: str):
        super().__init__(text)
        self.status_code, self.title, self.text = status_code, title, text


# What each refusal of Airflow's auth or of routing says, in Airflow's frame.
REFUSALS = {
    401: ("Log in first", "these pages are for Airflow's logged-in users: log in to Airflow and open them again"),
    403: ("Not allowed", "your Airflow user lacks the permission this needs; ask an Airflow admin for it"),
    404: ("Not found", None),
    405: ("Not found", None),
}


def same_origin(request: Request) -> None:
    """A form post carrying the session cookie must come from a page of this server: Airflow's cookie is SameSite=Lax,
    which still lets a sibling subdomain's page post. A client sending its own bearer token needs no such check."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    origin = request.headers.get("origin")
    if origin is None or urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "the form was not posted from this server's pages; post it from the Models page")


def parse_target(text: str) -> int | None:
    """The form's target version: empty for the champion before the current one."""
    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise ValueError(f"target version {text!r} is not a version number; pick one from the list or leave it empty")
    return int(text)


def checked_rollback(dag_id: str, reason: Annotated[str, Form()] = "",
                     target_version: Annotated[str, Form()] = "") -> dict:
    """The rollback's conf, when the rollback DAG's params and the registry's rollback rule accept it: refused
    otherwise with the line the DAG's form or the rollback job would give, before anything is triggered or logged."""
    dataset = datasets.of_dag(dag_id, ROLLBACK_DAG)
    if dataset is None:
        raise pages.NotFound(f"only a rollback DAG ({ROLLBACK_DAG} or {ROLLBACK_DAG}__<dataset>) is triggered "
                             f"from these pages, not {dag_id}")
    try:
        conf = {"target_version": parse_target(target_version), "reason": reason}
    except ValueError as error:
        raise Refused(400, "Rollback not triggered", str(error)) from None
    for param in params.ROLLBACK:
        problem = schema_error(conf[param.name], param.schema)
        if problem:
            raise Refused(400, "Rollback not triggered", f"Invalid input for param {param.name}: {problem}")
    try:
        pages.open_model(pages.registry_root(), dataset.model_name).rollback_target(conf["target_version"])
    except InputError as error:
        raise Refused(409, "Rollback not triggered", str(error)) from None
    return conf


def may_trigger(user, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=dag_id), user=user)


def may_read(user, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user)


def pipeline_of(model_name: str) -> str:
    """The pipeline DAG whose readers may see a model: its dataset's (the default one's for a model of none)."""
    dataset = datasets.of_model(model_name)
    return PIPELINE_DAG if dataset is None else dataset.suffixed(PIPELINE_DAG)


def failed_rollbacks(session, dag_ids) -> dict[str, dict]:
    """The newest run of each rollback DAG, when it failed (a rollback that became impossible after the form checked
    it): its run id, target, reason and who triggered it."""
    from airflow.models import DagRun
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    failed = {}
    for dag_id in dag_ids:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)).first()
        if run is not None and run.state == DagRunState.FAILED:
            failed[dag_id] = {"run_id": run.run_id, "conf": run.conf or {}, "user": run.triggering_user_name}
    return failed


def check_read(user, dag_id: str) -> None:
    if not may_read(user, dag_id):
        raise Refused(403, "Not allowed", f"your Airflow user may not read {dag_id}, whose model this is; ask an "
                                          "Airflow admin for access to it")


def create_app() -> FastAPI:
    app = FastAPI(title="imagepipe", dependencies=[Depends(get_user)], docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.dag_bag = create_dag_bag()

    @app.middleware("http")
    async def page_policy(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.exception_handler(pages.NotFound)
    def not_found(request: Request, error: pages.NotFound) -> Response:
        return message(request, 404, "Not found", str(error))

    @app.exception_handler(RequestValidationError)
    def not_a_page(request: Request, error: RequestValidationError) -> Response:
        # A version that is no number (/versions/x, or a `..` the client resolved into the path): no such page.
        if all(problem["loc"][0] == "path" for problem in error.errors()):
            return message(request, 404, "Not found", f"no page at {request.url.path}")
        problem = error.errors()[0]
        return message(request, 422, "Not accepted", f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}")

    @app.exception_handler(StarletteHTTPException)
    def refused_by_airflow(request: Request, error: StarletteHTTPException) -> Response:
        title, text = REFUSALS.get(error.status_code, ("Refused", None))
        response = message(request, error.status_code, title, text or str(error.detail))
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(Refused)
    def refused(request: Request, error: Refused) -> Response:
        return message(request, error.status_code, error.title, error.text)

    @app.exception_handler(InputError)
    def unusable(request: Request, error: InputError) -> Response:
        # A registry file that fails its sha256 check, a half-written version: the registry's one line says which.
        return message(request, 500, "The registry cannot show this", str(error))

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(app_path(request, "models"), status_code=303)

    @app.get("/models")
    def models_page(request: Request, user: GetUserDep, session: SessionDep) -> Response:
        root = pages.registry_root()
        names = [name for name in pages.model_names(root) if may_read(user, pipeline_of(name))]
        models = [pages.model_overview(pages.open_model(root, name)) for name in names]
        # Each dataset's model is rolled back by its dataset's rollback DAG; a model of no dataset has none. The form
        # is offered to those who may trigger that DAG.
        owners = {name: dataset for name, dataset in datasets.by_model().items() if name in names}
        rollback_dags = {name: dataset.suffixed(ROLLBACK_DAG) for name, dataset in owners.items()
                         if may_trigger(user, dataset.suffixed(ROLLBACK_DAG))}
        failed = failed_rollbacks(session, [dataset.suffixed(ROLLBACK_DAG) for dataset in owners.values()])
        failed_rollback = {name: {**failed[dataset.suffixed(ROLLBACK_DAG)], "dag_id": dataset.suffixed(ROLLBACK_DAG)}
                           for name, dataset in owners.items() if dataset.suffixed(ROLLBACK_DAG) in failed}
        pipeline_dags = {name: dataset.suffixed(PIPELINE_DAG) for name, dataset in owners.items()}
        drift = {name: pages.drift_history(Lake(dataset.lake_root()), name) for name, dataset in owners.items()}
        return render(request, "models.html", models=models, root=root, rollback_dags=rollback_dags,
                      failed_rollback=failed_rollback, drift=drift, scoring_dags={
                          name: dataset.suffixed(SCORING_DAG) for name, dataset in owners.items()},
                      pipeline_dags=pipeline_dags, pipeline_dag=PIPELINE_DAG)

    @app.get("/models/{model_name}/drift.png")
    def drift_chart(user: GetUserDep, model_name: str) -> Response:
        check_read(user, pipeline_of(model_name))
        dataset = datasets.of_model(model_name)
        runs = [] if dataset is None else pages.drift_history(Lake(dataset.lake_root()), model_name)
        if not runs:
            raise pages.NotFound(f"no batch scoring run of {model_name} has judged drift yet")
        from imagepipe import charts

        return Response(charts.png(charts.drift_figure(model_name, runs)), media_type="image/png")

    @app.get("/models/{model_name}/versions")
    def versions_page(request: Request, user: GetUserDep, model_name: str, page: int = 1) -> Response:
        check_read(user, pipeline_of(model_name))
        listing = pages.version_list(pages.open_model(pages.registry_root(), model_name), page)
        return render(request, "versions.html", listing=listing)

    @app.get("/models/{model_name}/history")
    def history_page(request: Request, user: GetUserDep, model_name: str, page: int = 1) -> Response:
        check_read(user, pipeline_of(model_name))
        listing = pages.history_list(pages.open_model(pages.registry_root(), model_name), page)
        return render(request, "history.html", listing=listing)

    @app.get("/models/{model_name}/versions/{version}")
    def version_page(request: Request, user: GetUserDep, model_name: str, version: int) -> Response:
        check_read(user, pipeline_of(model_name))
        detail = pages.version_detail(pages.open_model(pages.registry_root(), model_name), version)
        return render(request, "version.html", version=detail, pipeline_dag=PIPELINE_DAG)

    @app.get("/models/{model_name}/versions/{version}/files/{name:path}")
    def version_file(user: GetUserDep, model_name: str, version: int, name: str) -> Response:
        check_read(user, pipeline_of(model_name))
        data = pages.version_file(pages.open_model(pages.registry_root(), model_name), version, name)
        return Response(data, media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                        headers={"Content-Security-Policy": FILE_POLICY})

    @app.get("/runs/{dag_id}/{run_id}")
    def run_page(request: Request, user: GetUserDep, dag_id: str, run_id: str) -> Response:
        check_read(user, dag_id)
        dataset = datasets.of_dag(dag_id, PIPELINE_DAG)
        if dataset is None:
            return message(request, 404, "No model run here", f"runs of {dag_id} train no model: this tab shows the "
                           f"outcome of a pipeline run ({PIPELINE_DAG} or {PIPELINE_DAG}__<dataset>)")
        detail = pages.run_detail(Lake(dataset.lake_root()), run_id, dataset.model_name)
        return render(request, "run.html", run=detail, dag_id=dag_id)

    # Checked before Airflow's audit log records a trigger: a refused form triggers nothing and is no trigger.
    logged_trigger = Depends(action_logging("trigger_dag_run"))

    @app.post("/dags/{dag_id}/runs",
              dependencies=[trigger_rollback_dag, Depends(same_origin), Depends(checked_rollback), logged_trigger])
    def trigger_rollback(request: Request, dag_id: str, user: GetUserDep, session: SessionDep,
                         conf: Annotated[dict, Depends(checked_rollback)]) -> Response:
        """Trigger the rollback DAG as the logged-in user, through Airflow's own trigger endpoint code."""
        from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
        from airflow.api_fastapi.core_api.routes.public.dag_run import trigger_dag_run

        body = TriggerDAGRunPostBody(logical_date=None, conf=conf)
        try:
            run = trigger_dag_run(dag_id, body, request.app.state.dag_bag, user, session, request)
        except HTTPException as error:  # Airflow's refusal (a param its form would refuse, an unknown DAG)
            session.rollback()
            return message(request, error.status_code, "Rollback not triggered", str(error.detail))
        return render(request, "rollback.html", status_code=201, dag_id=dag_id, run_id=run.run_id,
                      target_version=conf["target_version"], reason=conf["reason"], user=user.get_name())

    # Last: any other path, after the app's auth like every route (an anonymous request gets 401, not 404).
    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def no_page(request: Request, path: str) -> Response:
        raise pages.NotFound(f"no page at {request.url.path}")

    return app
