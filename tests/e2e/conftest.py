"""The user's side of the README's commands: a shell environment like a user's and `make` run in it."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def user_env(tmp_path) -> dict[str, str]:
    """A shell environment like a user's: none of the test session's AWS, Airflow or Spark settings."""
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("AWS_", "AIRFLOW", "IMAGEPIPE_", "PYSPARK_"))
    }
    # Its own datasets file, so that `make dataset` leaves the project's dags/datasets.toml as it is.
    env.update({"IMAGEPIPE_DATA_DIR": str(tmp_path / "data"), "IMAGEPIPE_S3_PORT": str(_free_port()),
                "IMAGEPIPE_DATASETS_FILE": str(tmp_path / "datasets.toml")})
    return env


def _make(env: dict[str, str], *targets: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["make", "--no-print-directory", *targets], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=1200)
    if check:
        assert result.returncode == 0, (
            f"make {' '.join(targets)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture
def make():
    """`make(env, *targets)` runs make in the project as the user does; a failure fails the test with make's output
    unless check=False."""
    return _make
