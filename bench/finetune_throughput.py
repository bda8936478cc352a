"""Training throughput of the fine-tune: the training function each TorchDistributor process runs, driven directly
(no Spark, so it runs on a GPU machine without Java) in 1..N processes on this machine, on the project's drawn
sample images staged as the job stages them. Reports the training images/s of each epoch (all processes together,
validation and checkpoint excluded) and the wall time of the whole fine-tune.

    .venv/bin/python bench/finetune_throughput.py --processes 1 2 --image-size 64 --images 256 --epochs 2
    python3 bench/finetune_throughput.py --processes 1 --image-size 224 --images 4096 --batch-size 128   # a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def staged_root(folder: str, images: int, seed: int) -> str:
    import pyarrow as pa

    from imagepipe import storage
    from imagepipe.dev import sample_data
    from imagepipe.finetune.data import stage_split

    root = storage.join(folder, "finetuned", "bench")
    store = storage.open_store(root)
    for split, count in (("train", images), ("validation", max(8, images // 8))):
        drawn = list(sample_data.generate(per_class=max(1, count // len(sample_data.CLASSES)), seed=seed))
        stage_split(store, split, pa.table({"sha256": [hashlib.sha256(i.content).hexdigest() for i in drawn],
                                            "label": [i.label for i in drawn], "content": [i.content for i in drawn]}))
        seed += 1
    return root


def one_process(rank: int, job, processes: int, port: int, results: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(processes), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(processes)})
    from imagepipe.finetune.train import train_backbone

    document = train_backbone(job)
    if document is not None:
        Path(results).write_text(json.dumps(document))


def measure(processes: int, args) -> dict:
    import torch
    import torch.multiprocessing

    from imagepipe.dev import sample_data
    from imagepipe.featurizer import FeatureSpec
    from imagepipe.finetune.config import FinetuneConfig
    from imagepipe.finetune.train import FinetuneJob

    with tempfile.TemporaryDirectory() as folder:
        root = staged_root(folder, args.images, seed=processes)
        base = FeatureSpec(args.backbone, "random:0", args.image_size)
        job = FinetuneJob(base, dataclasses.replace(base, weights=f"{root}/backbone.pt"),
                          FinetuneConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs),
                          tuple(sorted(sample_data.CLASSES)), root)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        results = f"{folder}/result.json"
        started = time.perf_counter()
        torch.multiprocessing.spawn(one_process, args=(job, processes, port, results), nprocs=processes)
        seconds = time.perf_counter() - started
        document = json.loads(Path(results).read_text())
    return {"processes": processes, "wall_seconds": round(seconds, 1),
            "epochs": [{key: record[key] for key in ("epoch", "loss", "validation_accuracy", "images_per_second")}
                       for record in document["history"]],
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=256, help="training images (validation: an eighth)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    import torch

    report = {"machine": platform.node(), "cores": os.cpu_count(), "torch": torch.__version__,
              "backbone": args.backbone, "image_size": args.image_size, "images": args.images,
              "batch_size": args.batch_size, "runs": [measure(processes, args) for processes in args.processes]}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
