"""The README's first command on the embedded stack, run as a user runs it: make demo, twice. Each run goes through
Airflow (`airflow dags test`), spark-submit and the real S3 endpoint. (A dataset of one's own images:
test_own_images.py, on a worker of its own under make test.)"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from lake_tables import current_snapshot_id, table_rows

pytestmark = pytest.mark.e2e


def _registry(env) -> Path:
    return Path(env["IMAGEPIPE_DATA_DIR"]) / "lake" / "registry" / "image_classifier"


def _lake_images(env) -> list[dict]:
    return table_rows(env, Path(env["IMAGEPIPE_DATA_DIR"]) / "lake", "images", ("sha256",))


def test_make_demo_twice_promotes_one_champion_and_the_second_run_finds_nothing_new(user_env, make):
    first = make(user_env, "demo")
    assert "images ingested:  400 new" in first.stdout
    assert "gate verdict:     PASSED" in first.stdout
    assert "champion:         version 1" in first.stdout
    # The laptop's default backbone: pretrained EfficientNet-Lite0, offline, from the packaged weights.
    assert (f"backbone:         timm:tf_efficientnet_lite0 (timm {version('timm')}), pretrained weights "
            f"{Path.home()}/.cache/imagepipe/weights/efficientnet_lite0_imagenet.pth (sha256 1433548b), 224 px"
            in first.stdout), first.stdout
    metrics = json.loads((_registry(user_env) / "versions" / "1" / "metrics.json").read_text())
    # Far above what a pipeline with detached labels or misaligned features reaches (0.25 on four classes).
    assert metrics["candidate"]["accuracy"] >= 0.9

    lake = Path(user_env["IMAGEPIPE_DATA_DIR"]) / "lake"
    snapshots = {table: current_snapshot_id(user_env, lake, table) for table in ("images", "quarantine")}
    assert snapshots["images"] is not None

    second = make(user_env, "demo")
    assert "images ingested:  0 new" in second.stdout
    assert "skipped:          no new images in the window" in second.stdout
    assert "champion:         version 1" in second.stdout
    # The second run committed nothing: the tables are at the snapshots the first run left.
    assert {table: current_snapshot_id(user_env, lake, table) for table in snapshots} == snapshots
    images = _lake_images(user_env)
    assert len(images) == 400
    assert len({row["sha256"] for row in images}) == 400
    assert sorted(path.name for path in (_registry(user_env) / "versions").iterdir()) == ["1"]
    assert json.loads((_registry(user_env) / "versions" / "1" / "verdict.json").read_text())["passed"]
    # The embedded S3 that demo started is stopped again.
    assert not (Path(user_env["IMAGEPIPE_DATA_DIR"]) / "s3" / "moto.pid").exists()


def test_make_forget_removes_one_image_of_the_demos_lake_through_the_forget_dag(user_env, make):
    make(user_env, "demo")
    lake = Path(user_env["IMAGEPIPE_DATA_DIR"]) / "lake"
    key = sorted(row["key"] for row in table_rows(user_env, lake, "images", ("key",)))[0]

    forgotten = make(user_env, "forget", f"KEY={key}", "REASON=the person in it asked")

    assert forgotten.stdout.startswith(f"forgot {key} (the person in it asked)")
    assert "model versions whose training read it: [1]" in forgotten.stdout
    keys = {row["key"] for row in table_rows(user_env, lake, "images", ("key",))}
    assert key not in keys and len(keys) == 399
    refused = make(user_env, "forget", f"KEY={key}", "REASON=asked twice", check=False)
    assert refused.returncode != 0
    assert f"forget_image: error: no table of the lake {lake} holds an image with key {key}" in refused.stderr
