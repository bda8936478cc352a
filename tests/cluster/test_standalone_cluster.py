"""The jobs on a real Spark standalone cluster: a master and a worker started from the pip wheel on 127.0.0.1, whose
executors run a Python that has the dependencies but not imagepipe, so the library reaches them only through
--py-files, as on a cluster whose image does not carry it. The whole DAG runs against it through the spark_default
connection, in docker-compose.yaml's shape: the lake on object storage (s3a:// on a real S3 endpoint) and its
Iceberg catalog in a PostgreSQL database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from scheduler.postgres_server import PostgresServer

from imagepipe import storage
from imagepipe.dev import sample_data
from imagepipe.records import FinetuneRecord
from imagepipe.spark import local_driver_conf

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
pytestmark = pytest.mark.cluster

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    master_url: str
    ui_url: str
    port: int
    work_dir: Path  # the worker's: a folder per application, in it one per executor, its working directory

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def executor_python(tmp_path_factory) -> str:
    """A Python seeing this environment's packages but not the editable imagepipe install: a bare venv whose .pth adds
    the site-packages folder as a plain path, so the .pth files inside it (the editable install's) are not read."""
    venv = tmp_path_factory.mktemp("executor-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(venv / "bin" / "python")
    check = "import importlib.util as u; print(bool(u.find_spec('pyspark')), bool(u.find_spec('imagepipe')))"
    found = subprocess.run([python, "-c", check], cwd=venv, capture_output=True, text=True, check=True).stdout.split()
    assert found == ["True", "False"], "the executors' Python must have pyspark and must not have imagepipe"
    return python


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    # Its own process group, so teardown stops the daemon and the executors it launched, and nothing else.
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    import pyspark

    work = tmp_path_factory.mktemp("spark-cluster")
    spark_class = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent), "SPARK_LOCAL_IP": "127.0.0.1"}
    port, ui_port, worker_ui_port = _free_port(), _free_port(), _free_port()
    master = _start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                     "--webui-port", str(ui_port)], work / "master.log", env)
    worker = _start([spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2",
                     "--memory", "3g", "--webui-port", str(worker_ui_port), "--work-dir", str(work / "work"),
                     f"spark://127.0.0.1:{port}"], work / "worker.log", env)
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", port, work / "work")
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if cluster.state().get("aliveworkers") == 1:
                    break
            except (OSError, ValueError):
                pass  # not listening yet, or its UI answers before its JSON page is ready (an empty body)
            if time.monotonic() > deadline or master.poll() is not None or worker.poll() is not None:
                logs = "\n".join(f"{log}: {(work / log).read_text()[-2000:]}" for log in ("master.log", "worker.log"))
                pytest.fail(f"the standalone cluster did not come up with one worker:\n{logs}")
            time.sleep(1)
        yield cluster
    finally:
        _stop(worker)
        _stop(master)


@pytest.fixture(scope="module")
def catalog_server() -> PostgresServer:
    """A real PostgreSQL server holding the Iceberg catalog's database, as the compose file's does."""
    with PostgresServer() as server:
        server.create_database("imagepipe_catalog")
        yield server


def _submit_env(executor_python: str) -> dict[str, str]:
    """spark-submit's environment: the driver on this venv, the executors on the Python without imagepipe."""
    env = {name: value for name, value in os.environ.items() if name != "IMAGEPIPE_SPARK_MASTER"}
    env.update({"PYSPARK_PYTHON": executor_python, "PYSPARK_DRIVER_PYTHON": sys.executable,
                "SPARK_LOCAL_IP": "127.0.0.1", "PATH": f"{VENV_BIN}:{env['PATH']}"})
    return env


def short_jvms() -> dict[str, str]:
    """The conf a user of a cluster would set for JVMs that live a minute each, as this test's do: the options local
    jobs' drivers get (no optimising JIT, serial GC, Spark's class archive), for drivers and executors alike."""
    options = local_driver_conf()["spark.driver.extraJavaOptions"]
    return {"spark.driver.extraJavaOptions": options, "spark.executor.extraJavaOptions": options}


def test_the_whole_dag_runs_on_the_cluster_with_the_runs_resources(cluster, executor_python, catalog_server, s3_bucket,
                                                                   tmp_path):
    import psycopg2

    from imagepipe.lake import Lake
    from imagepipe.object_store import s3_client

    sample_data.upload(s3_client(), s3_bucket, "images",
                       sample_data.generate(per_class=20, seed=5, classes=("beach", "forest")))
    lake = f"s3a://{s3_bucket}/lake"
    env = _submit_env(executor_python)
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "spark://127.0.0.1",
                                                  "port": cluster.port, "extra": {"deploy-mode": "client"}}),
        "IMAGEPIPE_DATA_DIR": str(tmp_path / "data"),
        "IMAGEPIPE_LAKE_ROOT": lake,
        "IMAGEPIPE_CATALOG_URI": f"jdbc:postgresql://127.0.0.1:{catalog_server.port}/imagepipe_catalog?user=airflow",
        "IMAGEPIPE_MODEL_CACHE": str(tmp_path / "model_cache"),
        "IMAGEPIPE_SPARK_CONF": json.dumps({"spark.ui.enabled": "false", **short_jvms()}),
    })
    airflow = str(VENV_BIN / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=600)
    # Fine-tuning on: TorchDistributor's cluster mode, its two processes in barrier tasks on the executors.
    conf = {"source_uri": f"s3://{s3_bucket}/images/", "weights": "random:0", "image_size": 64,
            "executor_cores": 2, "executor_memory": "1g", "shuffle_partitions": 4,
            "min_test_images": 1, "min_accuracy": None,
            "finetune": True, "finetune_epochs": 1, "finetune_processes": 2}
    run = subprocess.run([airflow, "dags", "test", "image_classifier_pipeline", "--conf", json.dumps(conf)], env=env,
                         capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-5000:]

    champion = storage.read_json(f"{lake}/registry/image_classifier/champion.json")
    assert champion["version"] == 1
    # Every Spark job ran as an application of the cluster (not locally on the driver), with the executors the run
    # asked for, and its executors, whose Python has no imagepipe (executor_python), ran it from the --py-files
    # archive the task built, which the worker fetched into their working folders. Promotion, a pointer write, took
    # none of the cluster's resources.
    apps = {app["name"]: app for app in cluster.state()["completedapps"]}
    [archive] = (tmp_path / "data" / "py_files").glob("imagepipe-*.zip")
    for job in ("ingest_images", "finetune_backbone", "extract_features", "train_classifier", "evaluate_model"):
        assert job in apps, f"the cluster ran {sorted(apps)}"
        assert (apps[job]["memoryperexecutor"], apps[job]["cores"]) == (1024, 2), job
        assert list((cluster.work_dir / apps[job]["id"]).glob(f"*/{archive.name}")), job
    assert "promote_model" not in apps
    assert "Started distributed training with 2 executor processes" in run.stdout + run.stderr
    metadata = storage.read_json(f"{lake}/registry/image_classifier/versions/1/metadata.json")
    record = Lake(lake).read_record(metadata["run_id"], FinetuneRecord)
    space = storage.read_json(Lake(lake).feature_space_document(metadata["fingerprint"]))
    assert space["weights"] == record.weights and record.epochs_run == 1
    # The tables' files are objects under the lake's prefix, and the catalog that names them is the PostgreSQL one.
    keys = {item["Key"] for item in s3_client().list_objects_v2(Bucket=s3_bucket, Prefix="lake/")["Contents"]}
    for table in ("images", f"features/{metadata['fingerprint']}"):
        assert any(key.startswith(f"lake/{table}/data/") for key in keys), table
    with psycopg2.connect(host="127.0.0.1", port=catalog_server.port, user="airflow", dbname="imagepipe_catalog") as db:
        with db.cursor() as cursor:
            cursor.execute("SELECT table_namespace, table_name, metadata_location FROM iceberg_tables")
            catalogued = {(namespace, name): location for namespace, name, location in cursor.fetchall()}
    features = Lake(lake).features(metadata["fingerprint"]).name
    assert catalogued[("default", "images")].startswith(f"{lake}/images/metadata/")
    assert set(metadata["snapshots"]) == {"imagepipe.`default`.`images`", f"imagepipe.`default`.`{features}`"}
