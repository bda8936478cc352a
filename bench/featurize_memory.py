"""Memory benchmark of the feature-extraction engine: peak RSS of the process running it, for 2,000 and for 20,000
images streamed through it in Arrow batches, as a Spark Python worker streams a partition through mapInArrow.

Each size runs in a fresh child process (peak RSS is per process); batches are generated lazily, as Spark hands
them over, so the input itself takes no more memory for more images. Target: the two peaks within 200 MB.

    .venv/bin/python bench/featurize_memory.py --sizes 2000,20000 --image-size 64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from featurize_gpu import arrow_batches, synthetic_jpeg  # noqa: E402  (bench/ is the script's folder)


def child(images: int, batch_size: int, image_size: int, backbone: str) -> dict:
    from imagepipe.featurizer import FeatureSpec
    from imagepipe.featurizer.engine import FeatureExtractor

    distinct = arrow_batches([synthetic_jpeg(seed) for seed in range(batch_size)], batch_size)[0]
    extractor = FeatureExtractor(FeatureSpec(backbone, "random:0", image_size), "cpu", threads=1)
    batches = (distinct for _ in range(images // batch_size))
    started = time.perf_counter()
    rows = sum(batch.num_rows for batch in extractor.extract_batches(batches))
    return {
        "images": rows,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "images_per_s": rows / (time.perf_counter() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64, help="small crops keep 20,000 CPU images quick")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batch_size, args.image_size, args.backbone)))
        return
    results = []
    for size in (int(value) for value in args.sizes.split(",")):
        command = [sys.executable, __file__, "--child", str(size), "--batch-size", str(args.batch_size),
                   "--image-size", str(args.image_size), "--backbone", args.backbone]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    growth = results[-1]["peak_rss_mib"] - results[0]["peak_rss_mib"]
    summary = {"backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
               "runs": results, "peak_rss_growth_mib": growth}
    print(json.dumps(summary), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
