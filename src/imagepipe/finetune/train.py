"""The training function every fine-tune process runs (TorchDistributor starts them with torchrun, which sets RANK,
WORLD_SIZE, LOCAL_RANK and the rendezvous address).

Each process holds one replica in DistributedDataParallel: gloo on the CPU, NCCL with one GPU per process where torch
sees GPUs, in bf16 autocast there. Each epoch trains on the process's share of the training split
(DistributedSampler), measures validation accuracy over all processes' shares, and ends with a checkpoint that the
first process writes; a restarted fine-tune resumes after the last checkpointed epoch. Training stops early when
validation accuracy has not improved for `patience` epochs; the best epoch's backbone is the result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from imagepipe import storage
from imagepipe.featurizer import FeatureSpec
from imagepipe.finetune.artifact import load_checkpoint, save_checkpoint, write_artifact
from imagepipe.finetune.config import FinetuneConfig
from imagepipe.finetune.data import ImageDataset, read_split, training_transform
from imagepipe.finetune.model import build_classifier, optimizer_and_schedule, set_training

log = logging.getLogger("finetune_backbone")


@dataclass(frozen=True)
class FinetuneJob:
    """Everything a training process needs, pickled to each of them."""

    base: FeatureSpec  # the weights training starts from
    target: FeatureSpec  # the result as extraction will name it: its transforms are the ones trained on
    config: FinetuneConfig
    labels: tuple[str, ...]
    root: str  # the fine-tune's folder (artifact.finetuned_root)
    lineage: dict = field(default_factory=dict)  # copied into the artifact's document (base weights, data windows)


def train_backbone(job: FinetuneJob) -> dict | None:
    """Fine-tune in this process as one of WORLD_SIZE; the first process returns the artifact's document."""
    _end_with_parent()
    local_rank, local_processes = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    # One GPU per process, or none at all: every process of the group must take the same backend.
    on_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= local_processes
    if on_gpu:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
        # The processes of one machine share its cores.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_processes))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dist.init_process_group("nccl" if on_gpu else "gloo", timeout=timedelta(minutes=30))
    try:
        return _train(job, device)
    finally:
        dist.destroy_process_group()


def _end_with_parent() -> None:
    """torchrun starts each training process in a session of its own, so a kill of the job's process group (its
    task's) would leave them training and writing checkpoints beside the task's retry: the kernel ends this process
    when torchrun ends (on Linux; elsewhere the task's kill, which takes the job's whole process tree, stops it)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # torchrun ended before the request took
        os.kill(os.getpid(), signal.SIGKILL)


def _loaders(job: FinetuneJob, device, rank: int, world: int):
    store = storage.open_store(job.root)
    label_index = {label: index for index, label in enumerate(job.labels)}
    train = ImageDataset(read_split(store, "train"), label_index, job.target.steps,
                         training_transform(job.target, job.config))
    validation = ImageDataset(read_split(store, "validation"), label_index, job.target.steps,
                              job.target.preprocessing())
    sampler = torch.utils.data.DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True,
                                                  seed=job.config.seed)
    # On the CPU the process decodes its own images (the cores are busy training); a GPU is fed by loader workers.
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    workers = 0 if device.type == "cpu" else min(8, (os.cpu_count() or 1) // local_processes)
    common = {"batch_size": job.config.batch_size, "num_workers": workers, "pin_memory": device.type == "cuda"}
    # A batch of one cannot train batch norm: the last, short batch is dropped when the share holds a full one.
    train_loader = torch.utils.data.DataLoader(train, sampler=sampler,
                                               drop_last=len(sampler) > job.config.batch_size, **common)
    # Each validation image is scored once, by one process (DistributedSampler would pad the shares with repeats).
    shard = torch.utils.data.Subset(validation, range(rank, len(validation), world))
    return train_loader, torch.utils.data.DataLoader(shard, **common)


def _train(job: FinetuneJob, device) -> dict | None:
    rank, world = dist.get_rank(), dist.get_world_size()
    config, store = job.config, storage.open_store(job.root)
    train_loader, validation_loader = _loaders(job, device, rank, world)
    model, frozen = build_classifier(job.base, len(job.labels), config)
    optimizer, schedule = optimizer_and_schedule(model, config, len(train_loader))
    state = {"epoch": 0, "history": [], "best": {"epoch": 0, "accuracy": -1.0, "backbone": None}, "stopped": False}
    checkpoint = load_checkpoint(store)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["schedule"])
        state = {name: checkpoint[name] for name in state}
        if rank == 0:
            log.info("resuming %s after epoch %d of %d", job.root, state["epoch"], config.epochs)
    model.to(device, memory_format=torch.channels_last)
    replica = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    loss_function = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    seconds_this_run: list[float] = []
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["stopped"]:
            break
        started = time.monotonic()
        train_loader.sampler.set_epoch(epoch)
        set_training(model, frozen)
        totals = torch.zeros(2, dtype=torch.float64)  # loss summed over images, images
        for images, targets in train_loader:
            images = images.to(device, non_blocking=True, memory_format=torch.channels_last)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = loss_function(replica(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            totals += torch.tensor([loss.item() * len(targets), len(targets)], dtype=torch.float64)
        trained_seconds = time.monotonic() - started
        accuracy = _validation_accuracy(replica, validation_loader, device)
        totals = _summed(totals, device)
        seconds = time.monotonic() - started
        seconds_this_run.append(seconds)
        record = {"epoch": epoch, "loss": round(totals[0].item() / max(1, totals[1].item()), 6),
                  "validation_accuracy": round(accuracy, 6), "seconds": round(seconds, 3),
                  "images_per_second": round(totals[1].item() / trained_seconds, 1)}
        state["history"].append(record)
        state["epoch"] = epoch
        if accuracy > state["best"]["accuracy"]:
            # Only the first process writes the checkpoint and the result.
            backbone = ({name: tensor.detach().cpu().clone() for name, tensor in model.backbone.state_dict().items()}
                        if rank == 0 else None)
            state["best"] = {"epoch": epoch, "accuracy": accuracy, "backbone": backbone}
        state["stopped"] = epoch - state["best"]["epoch"] >= config.patience
        if rank == 0:
            save_checkpoint(store, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "schedule": schedule.state_dict(), **state})
            left = timedelta(seconds=round(sum(seconds_this_run) / len(seconds_this_run) * (config.epochs - epoch)))
            log.info("epoch %d/%d: loss %.4f, validation accuracy %.4f, %.1f images/s, %s left%s", epoch,
                     config.epochs, record["loss"], accuracy, record["images_per_second"], left,
                     f"; stopping: no better validation accuracy for {config.patience} epochs"
                     if state["stopped"] else "")
        dist.barrier()  # the checkpoint is whole before any process goes on
    if rank != 0:
        return None
    best = state["best"]
    return write_artifact(store, best["backbone"], {
        **job.lineage,
        "backbone": job.base.backbone,
        "base_weights": job.base.weights,
        "image_size": job.target.image_size,
        "preprocessing": list(job.target.steps),
        "labels": list(job.labels),
        "hyperparameters": config.to_json(),
        "processes": world,
        "epochs_run": state["epoch"],
        "stopped_early": state["stopped"],
        "best_epoch": best["epoch"],
        "best_validation_accuracy": round(best["accuracy"], 6),
        "history": state["history"],
    })


def _summed(values, device):
    """values summed over every process (through the device the process group communicates on)."""
    on_device = values.to(device)
    dist.all_reduce(on_device)
    return on_device.cpu()


def _validation_accuracy(replica, loader, device) -> float:
    """Share of all processes' validation images whose most likely class is their label."""
    replica.eval()
    counts = torch.zeros(2, dtype=torch.float64)  # right, images
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for images, targets in loader:
            predicted = replica.module(images.to(device, memory_format=torch.channels_last)).argmax(dim=1).cpu()
            counts += torch.tensor([(predicted == targets).sum().item(), len(targets)], dtype=torch.float64)
    counts = _summed(counts, device)
    return counts[0].item() / max(1.0, counts[1].item())
