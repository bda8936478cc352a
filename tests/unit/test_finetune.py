"""The fine-tune's training function in one process (world size 1, gloo) on small real images: it learns, it resumes
from its checkpoint after a kill, and its result is a headless state dict that feature extraction takes as weights."""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import socket
import time

import pyarrow as pa
import pytest
import torch

from imagepipe import storage
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.engine import build_model
from imagepipe.featurizer.weights import resolve_weights, weights_file
from imagepipe.finetune.artifact import CHECKPOINT, finetuned_root, load_checkpoint, read_artifact
from imagepipe.finetune.config import TORCHVISION_BLOCKS, FinetuneConfig, freezable_blocks
from imagepipe.finetune.data import stage_split
from imagepipe.finetune.model import build_classifier
from imagepipe.finetune.train import FinetuneJob, train_backbone

BASE = FeatureSpec("resnet18", "random:0", 32)
LABELS = ("beach", "night_sky")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def one_process(monkeypatch):
    """The variables torchrun gives a process group of one."""
    for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0",
                        "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)


def split_table(per_class: int, seed: int) -> pa.Table:
    images = list(sample_data.generate(per_class=per_class, seed=seed, classes=LABELS))
    return pa.table({"sha256": [hashlib.sha256(image.content).hexdigest() for image in images],
                     "label": [image.label for image in images], "content": [image.content for image in images]})


def staged_job(root: str, config: FinetuneConfig, train_per_class: int, validation_per_class: int):
    store = storage.open_store(root)
    stage_split(store, "train", split_table(train_per_class, seed=1))
    stage_split(store, "validation", split_table(validation_per_class, seed=2))
    target = dataclasses.replace(BASE, weights=storage.join(root, "backbone.pt"))
    return FinetuneJob(BASE, target, config, LABELS, root, {"data_windows": ["test"]})


def test_training_lowers_the_loss_and_beats_chance_on_an_easy_set(tmp_path, one_process):
    job = staged_job(finetuned_root(str(tmp_path), "easy"),
                     FinetuneConfig(epochs=2, learning_rate=1e-3, batch_size=8), 16, 6)

    document = train_backbone(job)

    history = document["history"]
    assert [record["epoch"] for record in history] == [1, 2]
    assert history[-1]["loss"] < history[0]["loss"]
    assert document["best_validation_accuracy"] > 0.75  # two classes: chance is 0.5
    assert document["best_validation_accuracy"] == max(record["validation_accuracy"] for record in history)
    assert all(record["images_per_second"] > 0 for record in history)


@pytest.mark.parametrize("lake", ["path", "s3"])
def test_the_result_is_a_headless_state_dict_that_extraction_takes_as_its_weights(
        lake, tmp_path, one_process, monkeypatch, request):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # where weights from S3 are fetched to
    lake_root = str(tmp_path) if lake == "path" else f"s3://{request.getfixturevalue('s3_bucket')}/lake"
    root = finetuned_root(lake_root, "artifact")
    job = staged_job(root, FinetuneConfig(epochs=1, batch_size=8, freeze=2), 8, 4)

    document = train_backbone(job)

    fetched = weights_file(job.target)  # as extraction fetches them
    saved = torch.load(fetched, weights_only=True)
    assert not [key for key in saved if key.startswith("fc.")]
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == document["sha256"]
    assert document["base_weights"] == "random:0" and document["labels"] == list(LABELS)
    assert document["hyperparameters"]["freeze"] == 2 and document["data_windows"] == ["test"]
    assert read_artifact(storage.open_store(root)) == document
    # The frozen stem and first stage kept the base weights; the stages after them learned.
    base = build_model(BASE).state_dict()
    assert torch.equal(saved["conv1.weight"], base["conv1.weight"])
    assert torch.equal(saved["layer1.0.conv1.weight"], base["layer1.0.conv1.weight"])
    assert not torch.equal(saved["layer4.0.conv1.weight"], base["layer4.0.conv1.weight"])
    # Extraction loads it (every backbone key, nothing missing) and names a feature space of its own.
    fine_tuned = build_model(job.target)
    assert torch.equal(fine_tuned.state_dict()["layer4.0.conv1.weight"], saved["layer4.0.conv1.weight"])
    assert resolve_weights(job.target).sha256 == document["sha256"]
    assert job.target.fingerprint(resolve_weights(job.target)) != BASE.fingerprint(resolve_weights(BASE))


def run_in_a_process(job: FinetuneJob, port: int) -> None:
    import os

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1",
                       "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"})
    train_backbone(job)


def test_a_killed_fine_tune_resumes_after_its_last_checkpointed_epoch(tmp_path, one_process, caplog):
    root = finetuned_root(str(tmp_path), "killed")
    job = staged_job(root, FinetuneConfig(epochs=3, batch_size=8), 24, 4)
    store = storage.open_store(root)
    process = multiprocessing.get_context("spawn").Process(target=run_in_a_process, args=(job, free_port()))
    process.start()
    deadline = time.monotonic() + 240
    while not store.exists(CHECKPOINT) and process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.join()
    saved = load_checkpoint(store)
    assert saved is not None and 1 <= saved["epoch"] < 3, "the process was killed before its last epoch"
    assert read_artifact(store) is None

    caplog.set_level("INFO", logger="finetune_backbone")
    document = train_backbone(job)

    assert f"resuming {root} after epoch {saved['epoch']} of 3" in caplog.text
    assert [record["epoch"] for record in document["history"]] == [1, 2, 3]
    assert document["history"][: saved["epoch"]] == saved["history"]
    assert document["epochs_run"] == 3


def test_freezable_blocks_name_parameters_of_each_backbone():
    for backbone in [*TORCHVISION_BLOCKS, "timm:tf_efficientnet_lite0", "timm:convnext_tiny"]:
        blocks = freezable_blocks(backbone)
        config = FinetuneConfig(freeze=len(blocks))
        model, frozen = build_classifier(FeatureSpec(backbone, "random:0"), 3, config)
        names = [name for name, _ in model.backbone.named_parameters()]
        assert all(any(name.startswith(prefix) for name in names) for block in blocks for prefix in block), backbone
        trainable = {name for name, parameter in model.backbone.named_parameters() if parameter.requires_grad}
        assert frozen, backbone
        # Freezing every block leaves only the head to train (a linear probe).
        assert trainable <= {"classifier.0.weight", "classifier.0.bias"}, (backbone, trainable)


def test_a_timm_backbone_freezes_its_stem_then_its_stages_by_its_own_structure():
    model, frozen = build_classifier(FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 64), 3,
                                     FinetuneConfig(freeze=2))
    trainable = {name.split(".")[0] for name, parameter in model.backbone.named_parameters() if parameter.requires_grad}

    assert frozen[:2] == ["conv_stem", "bn1"] and all(name.startswith("blocks.0.") for name in frozen[2:])
    assert "conv_stem" not in trainable and "conv_head" in trainable
    assert not any(parameter.requires_grad for name, parameter in model.backbone.named_parameters()
                   if name.startswith("blocks.0."))
    assert all(parameter.requires_grad for name, parameter in model.backbone.named_parameters()
               if name.startswith("blocks.1."))


def test_freezing_more_blocks_than_a_backbone_has_is_refused():
    with pytest.raises(InputError, match="freeze 6 is more than the 5 blocks of resnet18"):
        FinetuneConfig(freeze=6).check_backbone("resnet18")
