"""Test accuracy of the frozen path against the fine-tuned path on real data: scikit-learn's handwritten digits
(1,797 8x8 scans of ten classes), written out as PNG files under one folder per digit in an S3 bucket (moto's
server, started here) and put through the pipeline's jobs in one local Spark session.

One run ingests the digits. Two runs then work on that same window of the same lake: the frozen run extracts
features with the run's weights as they are; the fine-tuned run first fine-tunes the backbone (finetune_backbone,
TorchDistributor) and extracts with its weights (--finetune, as the pipeline does). Both train the same classifier
and are evaluated on the same test split (each image's content hash decides its split), with no champion to
compare against. The target of issue 18: the fine-tuned path's test error is at most half the frozen path's.

Pretrained weights cannot be downloaded here, so both paths start from the same seeded random backbone
(`--weights random:0`); give `--weights IMAGENET1K_V1` where the checkpoint is cached. Needs bench/requirements.txt.

    .venv/bin/python bench/finetune_digits.py --json bench/finetune_digits_vm2cores_2026-12-02.json
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from job_fixed_costs import start_s3  # noqa: E402  (bench/ is the script's folder)

from imagepipe.records import CandidateRecord, FinetuneRecord, WindowRecord

PROJECT = Path(__file__).resolve().parents[1]
BUCKET, PREFIX = "digits", "scans"


def upload_digits(client) -> int:
    """Every digit as an 8-bit grey PNG under scans/<digit>/; how many."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    client.create_bucket(Bucket=BUCKET)
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        buffer = io.BytesIO()
        Image.fromarray((pixels * 255 / 16).astype(np.uint8), "L").save(buffer, format="PNG")
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{label}/{index:04d}.png", Body=buffer.getvalue())
    return len(digits.images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="random:0", help="the backbone both paths start from")
    parser.add_argument("--image-size", default="32", help="pixels the scans are resized to (default: 32)")
    parser.add_argument("--epochs", default="8", help="most fine-tune epochs (default: 8)")
    parser.add_argument("--processes", default="2", help="fine-tune processes (default: 2)")
    parser.add_argument("--patience", default="5", help="epochs without a better validation accuracy (default: 5)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    server, _ = start_s3(IMAGEPIPE_SPARK_MASTER="local[2]")
    sys.path.insert(0, str(PROJECT))
    from imagepipe.lake import Lake
    from imagepipe.object_store import s3_client
    from imagepipe.registry import Registry
    from spark_jobs import evaluate_model, extract_features, finetune_backbone, ingest_images, train_classifier

    images = upload_digits(s3_client())
    time.sleep(1.1)  # the window ends at the second its listing starts: the uploads' second must be over
    lake_root = str(Path(tempfile.mkdtemp(prefix="imagepipe-digits-")) / "lake")
    lake = Lake(lake_root)
    features = ["--backbone", "resnet18", "--weights", args.weights, "--image-size", args.image_size]
    # The scans are 8 pixels a side, below ingest's default minimum of 16.
    ingest_images.main(["--run-id", "manual__ingest", "--lake-root", lake_root, "--min-side", "8",
                        "--source-uri", f"s3://{BUCKET}/{PREFIX}/", "--window-end", "2100-01-01T00:00:00+00:00"])

    results = {}
    for path in ("frozen", "fine-tuned"):
        run_id = f"manual__{path.replace('-', '_')}"
        run = ["--run-id", run_id, "--lake-root", lake_root]
        lake.write_record(run_id, lake.read_record("manual__ingest", WindowRecord))
        started = time.perf_counter()
        if path == "fine-tuned":
            finetune_backbone.main([*run, *features, "--finetune-epochs", args.epochs,
                                    "--finetune-processes", args.processes, "--finetune-patience", args.patience,
                                    # Mirrored digits are other digits, or none: crops only.
                                    "--finetune-augmentation", "random_resized_crop:0.7"])
        extract_features.main([*run, *features, "--finetune", str(path == "fine-tuned").lower()])
        train_classifier.main(run)
        evaluate_model.main([*run, "--min-accuracy", "none"])
        version = lake.read_record(run_id, CandidateRecord).version
        metrics = Registry(lake.registry, "image_classifier").document(version, "metrics")["candidate"]
        rows, accuracy = metrics["rows"], metrics["accuracy"]
        results[path] = {"accuracy": round(accuracy, 4), "macro_f1": round(metrics["macro_f1"], 4),
                         "test_rows": rows, "test_errors": round((1 - accuracy) * rows),
                         "seconds": round(time.perf_counter() - started, 1)}
        if path == "fine-tuned":
            results[path]["finetune"] = lake.read_record(run_id, FinetuneRecord).to_json()
        print(path, json.dumps(results[path]), flush=True)
    server.stop()

    # Both paths are tested on the same images: the ratio of their error counts is the ratio of their error rates.
    errors = {path: results[path]["test_errors"] for path in results}
    ratio = errors["fine-tuned"] / errors["frozen"] if errors["frozen"] else None
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
              "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(), "images": images,
              "weights": args.weights, "image_size": int(args.image_size), "epochs": int(args.epochs),
              "processes": int(args.processes), "patience": int(args.patience), "paths": results,
              "error_ratio": None if ratio is None else round(ratio, 3),
              "halves_the_error": ratio is not None and ratio <= 0.5}
    print(json.dumps({key: result[key] for key in ("error_ratio", "halves_the_error")}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
