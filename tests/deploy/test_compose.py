"""docker-compose.yaml and the Dockerfile, checked without a Docker engine: the compose file follows the Compose
Specification's JSON schema (vendored, see compose-spec.SOURCE.md), every service can be waited for, images are
pinned, mounts exist, credentials are local-only defaults, and what the stack sets is what the code reads."""

from __future__ import annotations

import json
import re
import shlex
import sys
from importlib.metadata import version
from pathlib import Path

import jsonschema
import yaml

from requirement_files import DEVELOPMENT, RUNTIME, TEST_TOOLS, pulled_in, read

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
COMPOSE = yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (PROJECT / "Dockerfile").read_text()
AIRFLOW_SERVICES = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
SPARK_WORKERS = ("spark-worker", "spark-worker-gpu")
# ${VAR:-default} with an empty default or one that says it is for local use only.
LOCAL_ONLY = re.compile(r"\$\{\w+:-(local-only[^}]*)?\}")
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|FERNET|TOKEN")


def _requirement_pins() -> dict[str, str]:
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    return {name.lower(): pin for name, _, pin in (line.partition("==") for line in lines) if pin}


def _environment(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[service].get("environment", {}).items()}


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else command


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((HERE / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(COMPOSE)


def test_every_service_is_healthchecked_or_a_one_shot_its_dependents_wait_to_finish():
    one_shots = {name for name, service in SERVICES.items() if "healthcheck" not in service}
    assert one_shots == {"airflow-init", "minio-init"}
    for name, service in SERVICES.items():
        if name in one_shots:
            assert service["restart"] == "no", name
        else:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        for dependency, wait in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in one_shots else "service_healthy"
            assert wait["condition"] == expected, f"{name} -> {dependency}"
    for one_shot in one_shots:
        assert any(one_shot in service.get("depends_on", {}) for service in SERVICES.values()), one_shot


def test_every_image_is_pinned_or_built_here():
    images = [service["image"] for service in SERVICES.values() if "image" in service]
    images += re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, f"{image} is not pinned to a release"
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            assert (PROJECT / service["build"] / "Dockerfile").is_file(), name


def test_every_mounted_or_copied_host_path_exists_and_named_volumes_are_declared():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (PROJECT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE, re.MULTILINE):
        for source in (word for word in line.split()[:-1] if not word.startswith("--")):
            assert (PROJECT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"


def test_airflow_services_share_the_common_block_and_mount_the_code_where_the_settings_look():
    common = COMPOSE["x-airflow-common"]
    assert common["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        service = SERVICES[name]
        assert (service["image"], service["volumes"]) == (common["image"], common["volumes"]), name
        assert common["environment"].items() <= service["environment"].items(), name
        # Only the init runs as root, to hand the named volumes to the Airflow user.
        assert service["user"] == ("0:0" if name == "airflow-init" else common["user"]), name
    for name, command in AIRFLOW_SERVICES.items():
        assert SERVICES[name]["command"] == command
    assert SERVICES["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"

    mounts = dict(volume.split(":")[:2] for volume in common["volumes"])
    assert mounts["./dags"] == "/opt/airflow/dags" and mounts["./plugins"] == "/opt/airflow/plugins"
    # The image installs the library editable from /opt/airflow/src; the mount puts the checkout's code over it, and
    # settings.spark_jobs_dir() is spark_jobs/ beside src/.
    assert mounts["./src"] == "/opt/airflow/src"
    assert mounts["./spark_jobs"] == str(Path(mounts["./src"]).parent / "spark_jobs")


def test_credentials_are_local_only_defaults_the_user_can_override():
    for name in SERVICES:
        for key, value in _environment(name).items():
            if CREDENTIAL_NAME.search(key):
                assert LOCAL_ONLY.fullmatch(value), f"{name}: {key} must be ${{VAR:-local-only...}}, not {value!r}"
            for userinfo in re.findall(r"://([^/@\s]+)@", value):
                password = userinfo.partition(":")[2]
                assert LOCAL_ONLY.fullmatch(password), f"{name}: {key} carries a password that is not a local default"


def test_environment_names_only_settings_the_code_reads():
    from airflow.configuration import retrieve_configuration_description

    # Every option Airflow documents, also those without a default (conf.has_option misses them).
    options = retrieve_configuration_description()
    library = "\n".join(path.read_text() for path in (PROJECT / "src" / "imagepipe").rglob("*.py"))
    for name in SERVICES:
        for key in _environment(name):
            if key.startswith("IMAGEPIPE_"):
                assert f'"{key}"' in library, f"{name} sets {key}, which imagepipe never reads"
            elif key.startswith("AIRFLOW__"):
                section, option = key.removeprefix("AIRFLOW__").lower().split("__")
                known = options.get(section, {}).get("options", {})
                assert option in known, f"{name} sets {key}, which is no Airflow option"


def test_airflow_submits_to_the_compose_spark_master_and_workers_join_it(monkeypatch):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    master = _command("spark-master")
    address = f"spark://{master[master.index('--host') + 1]}:{master[master.index('--port') + 1]}"
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", _environment("airflow-scheduler")["AIRFLOW_CONN_SPARK_DEFAULT"])
    connection = SparkSubmitHook(conn_id="spark_default")._resolve_connection()
    assert (connection["master"], connection["deploy_mode"]) == (address, "client")
    for worker in SPARK_WORKERS:
        assert _command(worker)[-1] == address


def test_lake_is_on_s3a_with_hadoop_aws_matching_the_hadoop_inside_pyspark_and_iceberg_matching_spark():
    import pyspark

    from imagepipe import jars

    pinned = {f"{jar.group}:{jar.artifact}": jar.version for jar in jars.pinned()}
    (hadoop_jar,) = (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")
    assert pinned["org.apache.hadoop:hadoop-aws"] == hadoop_jar.stem.removeprefix("hadoop-client-api-")
    assert "software.amazon.awssdk:bundle" in pinned
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    assert [name for name in pinned if name.startswith("org.apache.iceberg:iceberg-spark-runtime-")] == [
        f"org.apache.iceberg:iceberg-spark-runtime-{spark_minor}_2.13"]

    env = _environment("airflow-scheduler")
    created = {bucket.removeprefix("local/") for bucket in shlex.split(SERVICES["minio-init"]["command"][0])
               if bucket.startswith("local/")}
    assert env["IMAGEPIPE_LAKE_ROOT"].startswith("s3a://")
    for uri in (env["IMAGEPIPE_LAKE_ROOT"], env["IMAGEPIPE_SOURCE_URI"]):
        assert uri.split("/")[2] in created, f"{uri} is on a bucket minio-init does not create"


def test_the_image_fetches_the_pinned_jars_at_build_into_the_folder_the_jobs_read():
    assert re.search(r"^COPY --chown=\S+ jars.lock /opt/airflow/$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^RUN python -m imagepipe.jars fetch$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^ENV IMAGEPIPE_JARS_DIR=/opt/imagepipe/jars$", DOCKERFILE, re.MULTILINE)


def test_the_catalog_is_a_database_beside_airflows_whose_password_only_a_file_holds():
    env = _environment("airflow-scheduler")
    catalog = re.fullmatch(r"jdbc:postgresql://postgres:5432/(\w+)\?user=(\w+)", env["IMAGEPIPE_CATALOG_URI"])
    assert catalog, env["IMAGEPIPE_CATALOG_URI"]
    database, user = catalog.groups()
    scripts = "\n".join(path.read_text() for path in (PROJECT / "deploy" / "postgres").glob("*.sql"))
    assert f"CREATE DATABASE {database} OWNER {user};" in scripts
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in SERVICES["postgres"]["volumes"]
    init = SERVICES["airflow-init"]["command"][1]
    assert f"postgres:5432:{database}:{user}:%s" in init and '"$${PGPASSFILE}"' in init
    volume = f"catalog-secrets:{Path(env['PGPASSFILE']).parent}"
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert volume in SERVICES[name]["volumes"], name


def test_driver_and_every_executor_share_the_model_cache():
    cache = _environment("airflow-scheduler")["IMAGEPIPE_MODEL_CACHE"]
    for name in ("airflow-scheduler", *SPARK_WORKERS):
        assert f"model-cache:{cache}" in SERVICES[name]["volumes"], name
        assert _environment(name)["IMAGEPIPE_MODEL_CACHE"] == cache, name


def test_gpu_worker_reserves_an_nvidia_gpu_and_offers_it_to_spark_through_the_discovery_script(monkeypatch):
    from imagepipe import settings

    gpu = SERVICES["spark-worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and "profiles" not in SERVICES["spark-worker"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    worker_opts = gpu["environment"]["SPARK_WORKER_OPTS"].split()
    options = dict(option.removeprefix("-D").split("=", 1) for option in worker_opts)
    monkeypatch.setenv("IMAGEPIPE_GPUS_PER_EXECUTOR", "1")
    script = settings.gpu_spark_conf()["spark.executor.resource.gpu.discoveryScript"]
    assert options["spark.worker.resource.gpu.discoveryScript"] == script
    assert re.search(rf"^COPY deploy/spark/getGpusResources.sh {re.escape(script)}$", DOCKERFILE, re.MULTILINE)


def test_dockerfile_extends_the_installed_airflow_and_installs_the_pinned_requirements():
    pins = _requirement_pins()
    (base,) = re.findall(r"^FROM (apache/airflow:\S+)", DOCKERFILE, re.MULTILINE)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert base == f"apache/airflow:{version('apache-airflow')}-python{python}"
    assert pins["apache-airflow"] == version("apache-airflow")

    copied = re.search(r"^COPY requirements.txt constraints.txt (\S+)/$", DOCKERFILE, re.MULTILINE).group(1)
    installs = [shlex.split(line) for line in re.findall(r"pip install (.+)$", DOCKERFILE, re.MULTILINE)]
    assert any(["-r", f"{copied}/requirements.txt", "-c", f"{copied}/constraints.txt"] == [
        word for word in words if not word.startswith("--")] for words in installs)
    for words in installs:
        for spec in (word for word in words if "==" in word):
            name, _, pin = spec.partition("==")
            pinned = pins.get(name.lower())
            assert pinned == pin, f"the Dockerfile installs {spec}, requirements.txt pins {pinned}"


def test_the_image_installs_the_runtime_requirements_only_and_so_no_test_tool():
    copied = re.search(r"^COPY requirements.txt constraints.txt (\S+)/$", DOCKERFILE, re.MULTILINE).group(1)
    project = re.search(r"^COPY --chown=\S+ pyproject.toml README.md (\S+)/$", DOCKERFILE, re.MULTILINE).group(1)
    assert DEVELOPMENT not in DOCKERFILE
    installs = [[word for word in shlex.split(line) if word != "--no-cache-dir"]
                for line in re.findall(r"pip install (.+)$", DOCKERFILE, re.MULTILINE)]
    # The runtime requirements under the lock, and the project itself without its dependencies: nothing else.
    assert installs == [["-r", f"{copied}/{RUNTIME}", "-c", f"{copied}/constraints.txt"], ["--no-deps", "-e", project]]
    assert pulled_in(list(read(RUNTIME).values())) & TEST_TOOLS == set()


def test_gpu_discovery_script_reports_every_gpu_nvidia_smi_lists(tmp_path):
    import subprocess

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    fake.chmod(0o755)
    result = subprocess.run([str(PROJECT / "deploy" / "spark" / "getGpusResources.sh")], capture_output=True,
                            text=True, check=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert json.loads(result.stdout) == {"name": "gpu", "addresses": ["0", "1"]}
