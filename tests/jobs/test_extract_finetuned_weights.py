"""extract_features with --finetune, as the pipeline runs it after finetune_backbone: its weights are those the
run's finetune record names, whatever --weights says, in a feature space of their own; without a record it refuses
in one line rather than fall back to the base weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import settle
from imagepipe import storage
from imagepipe.dev import sample_data
from imagepipe.errors import REFUSED, InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.weights import resolve_weights
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import FeaturesRecord, FinetuneRecord, WindowRecord
from imagepipe.windows import Window, parse_timestamp
from pipeline_runs import FAR_FUTURE
from spark_jobs import extract_features, ingest_images

PROJECT = Path(__file__).resolve().parents[2]
SMALL = ["--backbone", "resnet18", "--weights", "random:0", "--image-size", "32", "--batch-size", "8"]


def save_backbone(path: Path) -> str:
    """A resnet18 state dict without its head, as finetune_backbone writes one (other weights than random:0's)."""
    import torch
    import torchvision

    torch.manual_seed(11)
    state = {key: value for key, value in torchvision.models.resnet18(weights=None).state_dict().items()
             if not key.startswith("fc.")}
    torch.save(state, path)
    return str(path)


@pytest.mark.slow
def test_with_finetune_on_features_come_from_the_weights_the_runs_finetune_record_names(
        spark, s3_bucket, lake_root, tmp_path):
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=2, seed=5))
    settle()
    common = ["--run-id", "manual__tuned", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    lake = Lake(lake_root)
    weights = save_backbone(tmp_path / "backbone.pt")
    lake.write_record("manual__tuned", finetune_record(weights))

    extract_features.main([*common, *SMALL, "--finetune", "true"])

    features = lake.read_record("manual__tuned", FeaturesRecord)
    tuned = FeatureSpec("resnet18", weights, 32, ("exif_transpose",))
    base = FeatureSpec("resnet18", "random:0", 32, ("exif_transpose",))
    assert features.fingerprint == tuned.fingerprint(resolve_weights(tuned)) != base.fingerprint(
        resolve_weights(base))
    assert features.rows == 8
    space = storage.read_json(lake.feature_space_document(features.fingerprint))
    assert space["weights"] == weights  # what scoring extracts new images with


def finetune_record(weights: str, backbone: str = "resnet18") -> FinetuneRecord:
    """What finetune_backbone records of weights it wrote (here saved by the test)."""
    return FinetuneRecord(backbone=backbone, weights=weights, sha256="0" * 64, reused=False, inputs_key="k",
                          best_validation_accuracy=0.5, epochs_run=1)


def write_window(lake_root: str, run_id: str) -> None:
    window = Window(parse_timestamp("2026-01-01T00:00:00+00:00"), parse_timestamp("2026-01-02T00:00:00+00:00"))
    Lake(lake_root).write_record(run_id, WindowRecord.of(window, run_id, {}))


def test_weights_fine_tuned_for_another_backbone_are_refused_in_one_line(lake_root, tmp_path):
    write_window(lake_root, "manual__resnet50")
    Lake(lake_root).write_record("manual__resnet50", finetune_record(str(tmp_path), backbone="resnet50"))
    with pytest.raises(InputError, match=(
            "^run manual__resnet50 fine-tuned a resnet50, not the resnet18 extract_features was given: extract with "
            "--backbone resnet50, as the run's finetune_backbone did$")):
        extract_features.main(["--run-id", "manual__resnet50", "--lake-root", lake_root, *SMALL, "--finetune"])


def test_with_finetune_on_and_no_finetune_record_it_refuses_in_one_line(lake_root):
    write_window(lake_root, "manual__untuned")
    result = subprocess.run(
        [sys.executable, "-m", "spark_jobs.extract_features", "--run-id", "manual__untuned", "--lake-root", lake_root,
         *SMALL, "--finetune"], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.returncode == REFUSED
    assert result.stderr.splitlines() == [
        f"extract_features: error: finetune is on but run manual__untuned has no finetune record in {lake_root}: run "
        "finetune_backbone for this run first, or extract with finetune off"], result.stderr
