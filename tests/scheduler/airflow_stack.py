"""Airflow started for real, as users run it: api-server, scheduler and dag-processor (LocalExecutor) on the
project's dags/ folder, each in its own process group, on a free port, with its own AIRFLOW_HOME and imagepipe data
folder. The metadata database is a parameter (SQLite in the home by default; a PostgreSQL URL works the same way).

    with AirflowStack(tmp_path, s3_env) as stack:
        run_id = stack.trigger("image_classifier_pipeline", {"source_uri": "s3://bucket/images/"})
        stack.wait_for_run("image_classifier_pipeline", run_id)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from lake_tables import table_rows

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COMPONENTS = ("api-server", "scheduler", "dag-processor")
FINISHED = {"success", "failed"}

DAG_ID = "image_classifier_pipeline"
# Small and fast enough for two cores, yet a real run: every task, the gate's checks and the registry.
SMALL_RUN = {
    "image_size": 32,
    "min_examples_per_class": 1,
    "min_test_images": 1,
    "min_accuracy": None,  # random weights on 32-pixel images: the gate's champion comparison is what matters here
    "selection_folds": 2,
    # MLlib's logistic regression runs one Spark job per iteration: on 32-pixel features of a few dozen images ten
    # are plenty, and each of the default hundred costs a scheduler round trip on a loaded machine.
    "hyperparameters": {"max_iter": 10},
}
# The postgres stack's second dataset (tests/scheduler/conftest.py): run by hand, its batch scoring on its champion.
SECOND = "second"
SECOND_BUCKET = f"second-{uuid.uuid4().hex[:8]}"
SECOND_DATASET = f"""
[datasets.{SECOND}]
source_uri = "s3://{SECOND_BUCKET}/images/"
schedule = "none"
scoring_uri = "s3://{SECOND_BUCKET}/unlabelled/"
"""


def s3_env() -> dict[str, str]:
    """The test session's S3 endpoint and credentials, for a stack's processes."""
    return {name: os.environ[name] for name in
            ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AirflowError(AssertionError):
    pass


class Service:
    """Something a test starts and must stop: `with` stops it on the way out, and after a start that failed half
    way, before the error goes on."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class AirflowStack(Service):
    def __init__(self, root: Path, s3_env: dict[str, str], sql_alchemy_conn: str | None = None,
                 extra_env: dict[str, str] | None = None):
        self.home = root / "airflow"
        self.data_dir = root / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self._token: str | None = None
        # Nothing of the test session's own Airflow, Spark or imagepipe settings leaks in: only what a user sets.
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("AWS_", "AIRFLOW", "IMAGEPIPE_", "PYSPARK_"))}
        env.update(s3_env)
        env.update({
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            # SQLite's default 5 s lock wait is too short for a CLI writing beside a busy scheduler on two cores.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                sql_alchemy_conn or f"sqlite:///{self.home / 'airflow.db'}?timeout=60",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            # Tasks reach the API through this URL: it must follow the port, or every task dies at start.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            # The scheduler serves task logs on a fixed port by default: two stacks on one machine would clash.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # Two Spark jobs at a time at most: the machines the tests run on have two cores.
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
                {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}}),
            "PYSPARK_PYTHON": sys.executable,
            "IMAGEPIPE_DATA_DIR": str(self.data_dir),
            "IMAGEPIPE_MODEL_CACHE": str(self.data_dir / "model_cache"),
            "IMAGEPIPE_WEIGHTS": "random:0",
        })
        env.update(extra_env or {})
        self.env = env

    @property
    def lake(self) -> Path:
        return self.data_dir / "lake"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        self._start_components()

    def _start_components(self, timeout: float = 240) -> None:
        for component in COMPONENTS:
            with open(self.home / f"{component}.log", "ab") as log:
                self.processes[component] = subprocess.Popen(
                    ["airflow", component], env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)  # its own process group, so stop() also ends what it spawned
        self._wait_healthy(timeout)

    def restart(self, **extra_env: str) -> None:
        """Stop every component and start them again with these settings added, as a user does after changing
        the environment; the metadata database (already migrated) and the lake stay."""
        self.stop()
        self.env.update(extra_env)
        self._token = None
        self._start_components()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    @staticmethod
    def _signal_group(process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an `airflow` CLI command against this stack's database; fail with its output when it fails."""
        result = subprocess.run(["airflow", *args], env=self.env, cwd=self.home, capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise AirflowError(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for component, process in self.processes.items():
                if process.poll() is not None:
                    raise AirflowError(f"airflow {component} exited at start:\n{self.log_tail(component)}")
            try:
                health = self.request("GET", "/api/v2/monitor/health", auth=False)
                if all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler")):
                    return
            except (OSError, AirflowError):
                pass
            time.sleep(1)
        raise AirflowError(f"Airflow did not become healthy within {timeout:.0f} s:\n{self.log_tail('scheduler')}")

    def log_tail(self, component: str, chars: int = 4000) -> str:
        path = self.home / f"{component}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    # REST API v2

    def password(self, username: str) -> str:
        """The password Airflow generated for one of the stack's users."""
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[username]

    def token_for(self, username: str) -> str:
        answer = self.request("POST", "/auth/token", {"username": username, "password": self.password(username)},
                              auth=False)
        return answer["access_token"]

    @property
    def token(self) -> str:
        """The admin's token, which the REST API calls use."""
        if self._token is None:
            self._token = self.token_for("admin")
        return self._token

    def request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        """JSON answer of the API; an HTTP error raises AirflowError carrying its status and body."""
        status, answer = self.call(method, path, body, auth)
        if status >= 400:
            raise AirflowError(f"{method} {path} answered {status}: {answer}")
        return answer

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def metadata_rows(self, query: str, **parameters) -> list[tuple]:
        """Rows straight from the stack's metadata database, whichever it is."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sqlalchemy.text(query), parameters)]
        finally:
            engine.dispose()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has parsed the DAG (it starts paused: unpause() lets its runs go)."""
        deadline = time.monotonic() + timeout
        while self.call("GET", f"/api/v2/dags/{dag_id}")[0] != 200:
            if time.monotonic() > deadline:
                raise AirflowError(
                    f"DAG {dag_id} was not parsed within {timeout:.0f} s:\n{self.log_tail('dag-processor')}")
            time.sleep(1)

    def wait_for_schedule(self, dag_id: str, cron: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has parsed the DAG with this schedule (after a restart with a new one)."""
        deadline = time.monotonic() + timeout
        while (summary := self.request("GET", f"/api/v2/dags/{dag_id}")["timetable_summary"]) != cron:
            if time.monotonic() > deadline:
                raise AirflowError(f"DAG {dag_id} has schedule {summary!r}, not {cron!r}, after {timeout:.0f} s:\n"
                                   f"{self.log_tail('dag-processor')}")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})

    def trigger(self, dag_id: str, conf: dict) -> str:
        answer = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return answer["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        answer = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    # A small run takes about 4 minutes on an idle two-core machine and three times that while make test runs other
    # stacks beside it: the limit is for a run that hangs, not a slow one.
    def wait_for_runs(self, dag_id: str, run_ids: list[str], timeout: float = 1800) -> dict[str, str]:
        """Wait until every run has finished; {run_id: state}."""
        deadline = time.monotonic() + timeout
        while True:
            states = {run["dag_run_id"]: run["state"] for run in self.runs(dag_id) if run["dag_run_id"] in run_ids}
            if len(states) == len(run_ids) and set(states.values()) <= FINISHED:
                return states
            if time.monotonic() > deadline:
                raise AirflowError(
                    f"runs still unfinished after {timeout:.0f} s: {states}\n{self.log_tail('scheduler')}")
            time.sleep(2)

    def wait_for_success(self, dag_id: str, run_ids: list[str], timeout: float = 1800) -> None:
        states = self.wait_for_runs(dag_id, run_ids, timeout)
        failed = [run_id for run_id, state in states.items() if state != "success"]
        if failed:
            tasks = {run_id: {task: ti["state"] for task, ti in self.task_instances(dag_id, run_id).items()}
                     for run_id in failed}
            raise AirflowError(f"runs failed: {tasks}\n{self.log_tail('scheduler')}")


# What the pipeline left in a stack's lake and registry: the default dataset's, or the named dataset's.

def dataset_lake(stack, dataset: str | None = None) -> Path:
    return stack.lake / "datasets" / dataset if dataset else stack.lake


def registry(stack, model: str = "image_classifier"):
    from imagepipe.registry import Registry

    return Registry(str(stack.lake / "registry"), model)


def champion(stack, model: str = "image_classifier") -> int | None:
    return registry(stack, model).champion_version()


def run_record(stack, run_id: str, kind: str, dataset: str | None = None):
    """A record the run's tasks wrote (window, ingest, candidate, promotion...), read through its class."""
    from imagepipe.lake import Lake
    from imagepipe.records import KINDS

    return Lake(str(dataset_lake(stack, dataset))).read_record(run_id, KINDS[kind])


def lake_images(stack, dataset: str | None = None) -> list[dict]:
    return table_rows(stack.env, dataset_lake(stack, dataset), "images", ("sha256", "key", "window_id"))
