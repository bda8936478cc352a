"""extract_features, the job, against the engine alone in one process, on the same few thousand small images.

The images (sample scenes shrunk to --side pixels, PNG and JPEG in turn) are put in moto's S3 server and ingested
into a lake by the ingest job, untimed. Then, for each --image-size, side by side:

  job     `spark-submit spark_jobs/extract_features.py` on a local[<cores>] master with the pipeline task's
          options, timed from start to exit (JVM and session start, the lake read, the model build in each Python
          worker, the features written): images/s = images / that time;
  engine  imagepipe's FeatureExtractor in this process on the same bytes read from the lake, torch using every core
          (the job's thread budget), model build included; its steady rate (model built) is reported too.

    .venv/bin/python bench/extract_small_images.py --images 3000 --side 28 --image-size 64 224 --json out.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from job_fixed_costs import start_s3, timed  # noqa: E402  (bench/ is the script's folder)

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
RUN_ID = "manual__bench"


def small_images(count: int, side: int):
    """`count` sample scenes of the four classes, shrunk to side x side, PNG and JPEG in turn."""
    from imagepipe.dev import sample_data

    rng = random.Random(0)
    for index in range(count):
        label = sample_data.CLASSES[index % len(sample_data.CLASSES)]
        image = sample_data.draw_image(label, rng).convert("RGB").resize((side, side))
        buffer = io.BytesIO()
        kind = "png" if index % 2 else "jpeg"
        image.save(buffer, format=kind.upper())
        yield sample_data.SampleImage(label, f"{index:05d}.{kind}", buffer.getvalue())


def spark_submit(job: str, args: list[str], cores: int) -> list[str]:
    from imagepipe.spark import driver_conf

    conf = [option for key, value in driver_conf("local", {}).items() for option in ("--conf", f"{key}={value}")]
    return [str(VENV_BIN / "spark-submit"), "--master", f"local[{cores}]", *conf, "--name", job,
            str(PROJECT / "spark_jobs" / f"{job}.py"), "--run-id", RUN_ID, *args]


def engine_rates(contents: list[bytes], image_size: int, cores: int, batch_size: int) -> dict:
    """Images/s of the engine alone: with its model build, and once built."""
    import torch

    from imagepipe.featurizer import FeatureSpec
    from imagepipe.featurizer.engine import FeatureExtractor

    torch.set_num_threads(cores)
    started = time.perf_counter()
    extractor = FeatureExtractor(FeatureSpec("resnet18", "random:0", image_size), "cpu", threads=cores)
    built = time.perf_counter()
    for start in range(0, len(contents), batch_size):
        with torch.inference_mode():
            extractor.model(extractor.prepare(contents[start : start + batch_size]).inputs)
    done = time.perf_counter()
    return {"engine_images_per_s": len(contents) / (done - started),
            "engine_steady_images_per_s": len(contents) / (done - built), "engine_model_build_s": built - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--side", type=int, default=28, help="pixels of each image's side")
    parser.add_argument("--image-size", type=int, nargs="+", default=[64, 224], help="the feature space's input")
    parser.add_argument("--batch-size", type=int, default=64, help="the engine's batch (the job's default)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    cores = os.cpu_count()

    work = Path(tempfile.mkdtemp(prefix="imagepipe-extract-small-"))
    server, env = start_s3(IMAGEPIPE_DATA_DIR=str(work), IMAGEPIPE_MODEL_CACHE=str(work / "model_cache"))
    from imagepipe.dev import sample_data
    from imagepipe.object_store import s3_client

    lake = str(work / "lake")
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
               "cores": cores, "images": args.images, "side": args.side, "backbone": "resnet18", "sizes": {}}
    try:
        sample_data.upload(s3_client(), "bench", "images", small_images(args.images, args.side))
        ingest = spark_submit("ingest_images", ["--lake-root", lake, "--source-uri", "s3://bench/images/",
                                                "--window-end", "2100-01-01T00:00:00Z"], cores)
        results["ingest_s"] = round(timed(ingest, env)[0], 1)
        import pyarrow.dataset as ds

        contents = ds.dataset(f"{lake}/images", format="parquet", partitioning="hive").to_table(
            columns=["content"]).column("content").to_pylist()
        assert len(contents) == args.images, f"ingest kept {len(contents)} of {args.images} images"
        for image_size in args.image_size:
            extract = spark_submit("extract_features", ["--lake-root", lake, "--weights", "random:0",
                                                        "--image-size", str(image_size)], cores)
            wall, cpu = timed(extract, env)
            rows = json.loads((work / "lake" / "runs" / RUN_ID / "features.json").read_text())["rows"]
            assert rows == args.images, f"the job computed {rows} rows"
            row = {"job_s": round(wall, 1), "job_cpu_s": round(cpu, 1), "job_images_per_s": args.images / wall,
                   **engine_rates(contents, image_size, cores, args.batch_size)}
            row["job_vs_engine"] = row["job_images_per_s"] / row["engine_images_per_s"]
            results["sizes"][str(image_size)] = {key: round(value, 3) for key, value in row.items()}
            print(image_size, json.dumps(results["sizes"][str(image_size)]), flush=True)
    finally:
        server.stop()
    results["this"] = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip()
    results["load_average_at_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
