"""CPU benchmark of feature extraction, side by side in one run on the same JPEG bytes:

  ceiling    a plain PyTorch loop in one process: same model, PIL decode + the weights' transforms, torch using every
             core (the thread budget the Spark job has);
  reference  the pattern published for Spark DL inference (Databricks, NVIDIA): an iterator pandas UDF that
             PIL-decodes and resizes each image, fp32, default torch threads, model built once per partition;
  imagepipe  the extract_features Spark path: mapInArrow into the engine, model built once per Python worker,
             torch threads = spark.task.cpus, decoding overlapped with inference.

Both Spark variants run in local[<cores>] with the same number of partitions; each is run twice and the second
(warm: JVM and Python workers started) is reported.

    .venv/bin/python bench/featurize_cpu.py --images 384 --backbone resnet18
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from featurize_gpu import arrow_batches, synthetic_jpeg  # noqa: E402  (bench/ is the script's folder)


def ceiling(contents: list[bytes], spec, cores: int, batch_size: int) -> float:
    import torch

    from imagepipe.featurizer.engine import FeatureExtractor

    torch.set_num_threads(cores)
    extractor = FeatureExtractor(spec, "cpu", threads=cores, decode_workers=1)
    started = time.perf_counter()
    for start in range(0, len(contents), batch_size):
        with torch.inference_mode():
            extractor.model(extractor.prepare(contents[start : start + batch_size]).inputs)
    return len(contents) / (time.perf_counter() - started)


def reference_udf(backbone: str, seed: int):
    """The published pattern, as its examples write it."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("array<float>")
    def featurize(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        import io

        import torch
        import torchvision
        from PIL import Image
        from torchvision import transforms

        torch.manual_seed(seed)
        model = getattr(torchvision.models, backbone)(weights=None)
        model.fc = torch.nn.Identity()
        model.eval()
        preprocess = transforms.Compose(
            [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
             transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
        )
        for contents in batches:
            inputs = torch.stack([preprocess(Image.open(io.BytesIO(c)).convert("RGB")) for c in contents])
            with torch.no_grad():
                outputs = model(inputs).numpy()
            yield pd.Series(list(outputs))

    return featurize


def spark_rate(frame, images: int) -> tuple[float, float]:
    """(cold, warm) images/s of forcing `frame` twice."""
    rates = []
    for _ in range(2):
        started = time.perf_counter()
        frame.write.format("noop").mode("overwrite").save()
        rates.append(images / (time.perf_counter() - started))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "resnet50"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    cores = os.cpu_count()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ["IMAGEPIPE_SPARK_MASTER"] = f"local[{cores}]"

    from imagepipe.features import extract_features
    from imagepipe.featurizer import FeatureSpec
    from imagepipe.spark import get_spark

    contents = [synthetic_jpeg(seed) for seed in range(args.images)]
    spec = FeatureSpec(args.backbone, "random:0", 224)
    results = {"machine": f"{platform.node()} {cores} cores", "images": args.images, "backbone": args.backbone,
               "mean_jpeg_kib": sum(map(len, contents)) / len(contents) / 1024}
    results["ceiling_images_per_s"] = ceiling(contents, spec, cores, args.batch_size)
    print(json.dumps(results), flush=True)

    spark = get_spark("bench-featurize-cpu", {
        "spark.ui.enabled": "false",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(args.batch_size),
    })
    table = arrow_batches(contents, args.batch_size)
    import pyarrow as pa

    images = spark.createDataFrame(pa.Table.from_batches(table).to_pandas()).repartition(cores).cache()
    images.count()
    reference = images.select(reference_udf(args.backbone, 0)("content").alias("features"))
    results["reference_cold_images_per_s"], results["reference_images_per_s"] = spark_rate(reference, args.images)
    print(json.dumps(results), flush=True)
    ours = extract_features(images, spec, "bench", threads=int(spark.conf.get("spark.task.cpus", "1")))
    results["imagepipe_cold_images_per_s"], results["imagepipe_images_per_s"] = spark_rate(ours, args.images)
    results["imagepipe_vs_ceiling"] = results["imagepipe_images_per_s"] / results["ceiling_images_per_s"]
    results["imagepipe_vs_reference"] = results["imagepipe_images_per_s"] / results["reference_images_per_s"]
    print(json.dumps(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    spark.stop()


if __name__ == "__main__":
    main()
