"""Shared fixtures: one local SparkSession for the whole run, a real S3 endpoint over HTTP (moto's server mode:
Spark's Python workers are separate processes and cannot see an in-process mock), and an empty lake per test."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Set before any SparkSession exists, so Spark's Python workers inherit them: the test endpoint and made-up
# credentials (the endpoint accepts any), and this interpreter for the workers.
S3_PORT = _free_port()
os.environ.update(
    {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
        "AWS_ACCESS_KEY_ID": f"test-{secrets.token_hex(4)}",
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYSPARK_PYTHON": sys.executable,
        "IMAGEPIPE_SPARK_MASTER": "local[2]",
        # Airflow reads its home at import: keep the tests' config and SQLite database out of the user's.
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagepipe-tests-airflow-"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The project's plugins, as every Airflow process of a deployment loads them (read once, at Airflow's import).
        "AIRFLOW__CORE__PLUGINS_FOLDER": os.path.join(os.path.dirname(os.path.dirname(__file__)), "plugins"),
        # Models pass through a local folder on their way to and from the registry: not the user's data/.
        "IMAGEPIPE_MODEL_CACHE": tempfile.mkdtemp(prefix="imagepipe-tests-models-"),
        # The lake's Iceberg catalog: an embedded one of this process's own, not the user's data/ (each test's lake
        # has a namespace of its own in it).
        "IMAGEPIPE_CATALOG_URI": "jdbc:sqlite:" + os.path.join(tempfile.mkdtemp(prefix="imagepipe-tests-catalog-"),
                                                              "catalog.sqlite"),
    }
)
for _variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_variable, None)
# py4j logs its shutdown after pytest has closed the captured streams.
logging.getLogger("py4j").setLevel(logging.WARNING)
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 endpoint's access log


# Test tiers. make check runs the fast tier (-m "not slow"); make test runs everything, side by side (pytest-xdist,
# --dist loadscope: a module's tests on one worker). Every test of these folders starts whole stacks (Airflow, make
# demo, a Spark cluster): they are slow, and marked with their folder's name, by where they are, so a new test there
# needs no marker of its own. The folders are in the order their modules start in, longest first.
TESTS = Path(__file__).resolve().parent
SLOW_FOLDERS = ("scheduler", "e2e", "cluster")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in SLOW_FOLDERS:
            item.add_marker(folder)
            item.add_marker("slow")
    holding_slow_tests = {item.path for item in items if item.get_closest_marker("slow")}

    def start_rank(item) -> int:
        """Modules start longest first: the slow folders', then modules holding slow tests, then the rest."""
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in SLOW_FOLDERS:
            return SLOW_FOLDERS.index(folder)
        return len(SLOW_FOLDERS) + (item.path not in holding_slow_tests)

    items.sort(key=start_rank)


def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduling by module (a module's tests share its fixtures: a stack, a cluster, a trained lake), with a
    worker handed its next module only as the last test of its current one starts (xdist's own rule hands it over
    while two are left): a module queued behind a long test waits for all of it, so long tests come first in their
    modules."""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesLongestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid.split("::", 1)[0]  # the module, also for tests in a class

        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
            elif self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    if config.getoption("dist") != "loadscope":
        return None
    config.option.loadscopereorder = False  # modules start in collection order, which is longest first (above)
    return ModulesLongestFirst(config, log)


def settle() -> None:
    """Wait into the next whole second: an ingest window ends at the second its listing starts, so objects written
    in that very second belong to the next window."""
    time.sleep(1.05 - time.time() % 1)


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    server.start()
    yield os.environ["AWS_ENDPOINT_URL"]
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A new, empty bucket on the test endpoint."""
    from imagepipe.object_store import s3_client

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def spark():
    from imagepipe.spark import get_spark

    session = get_spark(
        "imagepipe-tests",
        {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture
def lake_root(tmp_path) -> str:
    return str(tmp_path / "lake")


def exif_rotated_jpeg(upright) -> bytes:
    """The PIL image `upright` as a JPEG stored turned a quarter left, with the EXIF orientation phones write for
    that (6: rotate 90 degrees clockwise to display)."""
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()
