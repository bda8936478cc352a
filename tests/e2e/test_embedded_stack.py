"""The README's first command on the embedded stack, run as a user runs it: make demo, twice. Each run goes through
Airflow (`airflow dags test`), spark-submit and the real S3 endpoint. (A dataset of one's own images:
test_own_images.py, on a worker of its own under make test.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _registry(env) -> Path:
    return Path(env["IMAGEPIPE_DATA_DIR"]) / "lake" / "registry" / "image_classifier"


def _lake_images(env) -> list[dict]:
    import pyarrow.dataset as ds

    table = ds.dataset(Path(env["IMAGEPIPE_DATA_DIR"]) / "lake" / "images", format="parquet", partitioning="hive")
    return table.to_table(columns=["sha256"]).to_pylist()


def test_make_demo_twice_promotes_one_champion_and_the_second_run_finds_nothing_new(user_env, make):
    first = make(user_env, "demo")
    assert "images ingested:  400 new" in first.stdout
    assert "gate verdict:     PASSED" in first.stdout
    assert "champion:         version 1" in first.stdout
    metrics = json.loads((_registry(user_env) / "versions" / "1" / "metrics.json").read_text())
    # Far above what a pipeline with detached labels or misaligned features reaches (0.25 on four classes).
    assert metrics["candidate"]["accuracy"] >= 0.9

    second = make(user_env, "demo")
    assert "images ingested:  0 new" in second.stdout
    assert "skipped:          no new images in the window" in second.stdout
    assert "champion:         version 1" in second.stdout
    images = _lake_images(user_env)
    assert len(images) == 400
    assert len({row["sha256"] for row in images}) == 400
    assert sorted(path.name for path in (_registry(user_env) / "versions").iterdir()) == ["1"]
    assert json.loads((_registry(user_env) / "versions" / "1" / "verdict.json").read_text())["passed"]
    # The embedded S3 that demo started is stopped again.
    assert not (Path(user_env["IMAGEPIPE_DATA_DIR"]) / "s3" / "moto.pid").exists()
