"""Which backbone a laptop user should start from, on real data: scikit-learn's handwritten digits (1,797 8x8 scans,
ten classes) written out as PNG files in an S3 bucket (moto's server, started here) and put through the pipeline's
jobs in one local Spark session, three ways on the same window and the same test split:

  resnet18_random_frozen   features of a seeded random ResNet-18 (the laptop's former default)
  lite0_pretrained_frozen  features of the packaged ImageNet-pretrained EfficientNet-Lite0 (timm, the new default)
  lite0_pretrained_tuned   that backbone fine-tuned on the train split first (finetune_backbone, TorchDistributor)

Each is trained and evaluated alike; the figures are test accuracy and the wall time of its jobs per image. Then the
CPU featurize rate of both backbones at 224 pixels, one after the other in this run, in a plain loop of the engine
(bench/featurize_cpu.py's ceiling: every core, PIL decode and the backbone's transforms) on the same synthetic JPEGs.
Needs bench/requirements.txt.

    .venv/bin/python bench/backbone_digits.py --json bench/backbone_digits_polyglot_2026-12-07.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from finetune_digits import BUCKET, PREFIX, upload_digits  # noqa: E402  (bench/ is the script's folder)
from job_fixed_costs import start_s3  # noqa: E402

from imagepipe.records import CandidateRecord, FinetuneRecord, WindowRecord

PROJECT = Path(__file__).resolve().parents[1]


def paths(lite0_weights: str) -> dict[str, tuple[str, str, bool]]:
    return {
        "resnet18_random_frozen": ("resnet18", "random:0", False),
        "lite0_pretrained_frozen": ("timm:tf_efficientnet_lite0", lite0_weights, False),
        "lite0_pretrained_tuned": ("timm:tf_efficientnet_lite0", lite0_weights, True),
    }


def featurize_rates(lite0_weights: str, images: int, batch_size: int) -> dict[str, float]:
    """Images/s of each backbone at 224 pixels in the engine's plain CPU loop, same JPEGs, one after the other."""
    from featurize_cpu import ceiling
    from featurize_gpu import synthetic_jpeg

    from imagepipe.featurizer import FeatureSpec

    contents = [synthetic_jpeg(seed) for seed in range(images)]
    specs = {"resnet18": FeatureSpec("resnet18", "random:0", 224),
             "tf_efficientnet_lite0": FeatureSpec("timm:tf_efficientnet_lite0", lite0_weights, 224)}
    return {name: round(ceiling(contents, spec, os.cpu_count(), batch_size), 1) for name, spec in specs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", default="64", help="pixels the scans are resized to (default: 64)")
    parser.add_argument("--epochs", default="6", help="most fine-tune epochs (default: 6)")
    parser.add_argument("--processes", default="2", help="fine-tune processes (default: 2)")
    parser.add_argument("--featurize-images", type=int, default=256, help="JPEGs for the 224-pixel rates")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    server, _ = start_s3(IMAGEPIPE_SPARK_MASTER="local[2]")
    sys.path.insert(0, str(PROJECT))
    from imagepipe.dev import packaged_weights
    from imagepipe.lake import Lake
    from imagepipe.object_store import s3_client
    from imagepipe.registry import Registry
    from spark_jobs import evaluate_model, extract_features, finetune_backbone, ingest_images, train_classifier

    lite0_weights = str(packaged_weights.install())
    images = upload_digits(s3_client())
    time.sleep(1.1)  # the window ends at the second its listing starts: the uploads' second must be over
    lake_root = str(Path(tempfile.mkdtemp(prefix="imagepipe-digits-")) / "lake")
    lake = Lake(lake_root)
    # The scans are 8 pixels a side, below ingest's default minimum of 16.
    ingest_images.main(["--run-id", "manual__ingest", "--lake-root", lake_root, "--min-side", "8",
                        "--source-uri", f"s3://{BUCKET}/{PREFIX}/", "--window-end", "2100-01-01T00:00:00+00:00"])

    results = {}
    for path, (backbone, weights, tuned) in paths(lite0_weights).items():
        run_id = f"manual__{path}"
        run = ["--run-id", run_id, "--lake-root", lake_root]
        features = ["--backbone", backbone, "--weights", weights, "--image-size", args.image_size]
        lake.write_record(run_id, lake.read_record("manual__ingest", WindowRecord))
        started = time.perf_counter()
        if tuned:
            finetune_backbone.main([*run, *features, "--finetune-epochs", args.epochs, "--finetune-patience", "3",
                                    "--finetune-processes", args.processes,
                                    # Mirrored digits are other digits, or none: crops only.
                                    "--finetune-augmentation", "random_resized_crop:0.7"])
        extract_features.main([*run, *features, "--finetune", str(tuned).lower()])
        train_classifier.main(run)
        evaluate_model.main([*run, "--min-accuracy", "none"])
        seconds = time.perf_counter() - started
        version = lake.read_record(run_id, CandidateRecord).version
        metrics = Registry(lake.registry, "image_classifier").document(version, "metrics")["candidate"]
        results[path] = {"backbone": backbone, "fine_tuned": tuned, "accuracy": round(metrics["accuracy"], 4),
                         "macro_f1": round(metrics["macro_f1"], 4), "test_rows": metrics["rows"],
                         "seconds": round(seconds, 1), "ms_per_image": round(1000 * seconds / images, 1)}
        if tuned:
            record = lake.read_record(run_id, FinetuneRecord)
            results[path]["finetune_epochs_run"] = record.epochs_run
        print(path, json.dumps(results[path]), flush=True)
    server.stop()

    rates = featurize_rates(lite0_weights, args.featurize_images, 64)
    print("featurize images/s at 224 px", json.dumps(rates), flush=True)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
              "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(), "images": images,
              "image_size": int(args.image_size), "epochs": int(args.epochs), "processes": int(args.processes),
              "paths": results, "featurize_224px_images_per_s": rates}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
