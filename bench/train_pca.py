"""PCA benchmark: training time and test accuracy of the train job's default classifier (multinomial logistic
regression) on the sample data set's features, with and without a PCA stage to 64 components inside the model, side
by side in one run on the same feature rows and the same hash split.

Features come from the engine (imagepipe.featurizer.engine) on the CPU: the sample images
(imagepipe.dev.sample_data, four scene classes) through a seeded random ResNet-50 (2,048 features per image; no
pretrained weights offline). Training and scoring use the library's own fit_classifier / classification_metrics in
Spark local[<cores>]; fit wall seconds are the best of 3 fits after a warm-up fit (median reported too).

    .venv/bin/python bench/train_pca.py --per-class 150 --json pca.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path


def sample_features(per_class: int, backbone: str, image_size: int) -> list[tuple]:
    from imagepipe.dev import sample_data
    from imagepipe.featurizer import FeatureSpec
    from imagepipe.featurizer.engine import FeatureExtractor

    images = list(sample_data.generate(per_class=per_class, seed=0))
    extractor = FeatureExtractor(FeatureSpec(backbone, "random:0", image_size), "cpu", threads=os.cpu_count())
    rows = []
    for start in range(0, len(images), 64):
        chunk = images[start:start + 64]
        vectors, errors = extractor.features([image.content for image in chunk])
        assert not any(errors), errors
        rows += [(hashlib.sha256(image.content).hexdigest(), image.label, [float(v) for v in vector], "w")
                 for image, vector in zip(chunk, vectors, strict=True)]
    return rows


def measure(spark, train, test, transforms: list[str], dimension: int, repeats: int) -> dict:
    from imagepipe.classifiers import model_spec
    from imagepipe.evaluation import classification_metrics, score
    from imagepipe.training import fit_classifier

    spec = model_spec("logistic_regression", {}, transforms, "none", 3)
    fit_classifier(train, spec, dimension)  # warm-up: JIT, Python workers
    seconds, model = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        model, _, _ = fit_classifier(train, spec, dimension)
        seconds.append(time.perf_counter() - started)
    metrics = classification_metrics(score(model, test), list(model.stages[0].labels))
    return {"feature_transforms": transforms, "fit_seconds_best": round(min(seconds), 2),
            "fit_seconds_median": round(statistics.median(seconds), 2), "test_accuracy": metrics["accuracy"],
            "test_macro_f1": metrics["macro_f1"], "test_rows": metrics["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    from imagepipe.spark import get_spark
    from imagepipe.training import with_split

    started = time.perf_counter()
    rows = sample_features(args.per_class, args.backbone, args.image_size)
    featurize_seconds = time.perf_counter() - started
    cores = os.cpu_count()
    spark = get_spark("bench-train-pca", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": str(cores)})
    features = with_split(
        spark.createDataFrame(rows, "sha256 string, label string, features array<float>, window_id string"))
    features = features.repartition(cores).persist()
    train, test = features.filter("split = 'train'").persist(), features.filter("split = 'test'").persist()
    train.count(), test.count()
    dimension = len(rows[0][2])
    results = {
        "machine": f"{platform.node()}, {cores} cores, {platform.processor() or platform.machine()}",
        "date": date.today().isoformat(),
        "images": len(rows), "backbone": f"{args.backbone} random:0 at {args.image_size}px",
        "feature_dimension": dimension,
        "train_rows": train.count(), "featurize_seconds": round(featurize_seconds, 1),
        "runs": [measure(spark, train, test, transforms, dimension, args.repeats)
                 for transforms in ([], [f"pca:{args.components}"])],
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
