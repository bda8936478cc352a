"""Training benchmark: MLlib multinomial LogisticRegression (as the train_classifier job fits it) against
scikit-learn's LogisticRegression (solver lbfgs, multinomial), side by side in one run on the same data.

The MLlib side fits what the train job fits in front of the classifier (`imagepipe.classifiers.transform_stages`:
for logistic regression, centring, which keeps MLlib's training blocks dense) and the classifier, inside the timer.

Data: a seeded Gaussian mixture shaped like pooled CNN features: 10 classes, 512 float32 features per row,
x = relu(class mean + unit noise), class means N(0, 0.1^2), 50,000 rows, balanced; learnable but not separable.
Both sides generate it from the same seed in their own process (each reports a checksum of the float32 bytes and the
labels, so "same data" is checked).

Fairness:
  - the same objective: mean log loss + regParam / 2 * ||W||^2 (intercepts unpenalised) on both sides; scikit-learn
    minimises C * sum(log loss) + ||W||^2 / 2, the same problem for C = 1 / (regParam * n_samples);
  - standardization off in MLlib (scikit-learn has no internal standardization; with it on, MLlib would penalise the
    coefficients of standardized features, a different problem);
  - the same maxIter and tolerance, L-BFGS with 10 corrections on both sides (the stopping rules are each library's
    own; iterations done are reported);
  - the same thread budget: Spark local[2] (one task per core) and scikit-learn / OpenBLAS with 2 threads;
  - data in memory before the timer: in numpy (float64, the precision lbfgs works in) for scikit-learn; for MLlib in a
    Spark DataFrame of `array_to_vector(features)` (how imagepipe.training feeds MLlib), repartitioned to the number
    of cores, cached and materialised;
  - centring changes neither side's problem: the intercept is unpenalised on both, and absorbs the shift;
  - each side in its own fresh process, so each peak RSS is its own (for MLlib: the driver JVM, which runs the
    executor in local mode, and the Python driver); fit wall seconds are the best of 3 fits (median and CPU seconds
    reported too: the machine may be shared, and the 1-minute load average around each side is recorded).

Install the benchmark-only dependency and run it:

    .venv/bin/pip install -r bench/requirements.txt -c constraints.txt
    .venv/bin/python bench/train_logreg.py --rows 50000 --json train.json

`--mllib-variants` adds MLlib runs with other settings to the same run (e.g. `transforms=none` for the classifier
alone, `standardization=true` as the product fits, `aggregationDepth=3`, `partitions=4`, `maxBlockSizeInMB=16.0`),
each a fresh process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def synthetic_features(rows: int, dims: int, classes: int, seed: int, separation: float):
    """(float32 features, int labels): relu(class mean + N(0, 1)), class means N(0, separation^2) per feature."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, separation, size=(classes, dims)).astype(np.float32)
    labels = np.arange(rows) % classes
    rng.shuffle(labels)
    features = means[labels] + rng.standard_normal((rows, dims), dtype=np.float32)
    np.maximum(features, 0.0, out=features)
    return features, labels


def checksum(features: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(features.tobytes())
    digest.update(labels.astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_figures(fits: list[float], cpus: list[float], load_before: float) -> dict:
    """Wall seconds of each fit, best and median; CPU seconds of each fit (steadier than wall time when others share
    the machine); the 1-minute load average before and after."""
    return {"fit_seconds": fits, "fit_seconds_best": min(fits), "fit_seconds_median": statistics.median(fits),
            "fit_cpu_seconds": cpus, "fit_cpu_seconds_best": min(cpus),
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0]}


def child_sklearn(args) -> dict:
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from threadpoolctl import threadpool_info, threadpool_limits

    features, labels = synthetic_features(args.rows, args.dims, args.classes, args.seed, args.separation)
    result = {"side": "scikit-learn", "data_checksum": checksum(features, labels), "sklearn": sklearn.__version__}
    x = features.astype(np.float64)
    del features
    c = 1.0 / (args.reg_param * args.rows)
    fits, cpus, load = [], [], os.getloadavg()[0]
    with threadpool_limits(limits=args.cores):
        result["threadpools"] = [f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info()]
        for _ in range(args.repeats):
            model = LogisticRegression(C=c, solver="lbfgs", max_iter=args.max_iter, tol=args.tol)
            started, cpu = time.perf_counter(), time.process_time()
            model.fit(x, labels)
            fits.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
    result.update({
        "C": c, **fit_figures(fits, cpus, load),
        "iterations": int(model.n_iter_.max()),
        "seconds_per_iteration": min(fits) / int(model.n_iter_.max()),
        "train_accuracy": float((model.predict(x) == labels).mean()),
        # MLlib's objective: mean log loss + regParam / 2 * ||W||^2
        "objective": float(log_loss(labels, model.predict_proba(x)) + args.reg_param / 2 * (model.coef_ ** 2).sum()),
        "peak_rss_mib": peak_rss_mib(),
    })
    return result


class JvmPeak:
    """Peak RSS (VmHWM) of the driver JVM, a child of this process."""

    def __init__(self):
        import psutil

        self.process = next(p for p in psutil.Process().children(recursive=True) if p.name() == "java")

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")


def child_mllib(args) -> dict:
    os.environ["IMAGEPIPE_SPARK_MASTER"] = f"local[{args.cores}]"
    # One BLAS thread per Spark task (as Spark's MLlib guide advises): the tasks themselves use the cores.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import pyarrow as pa
    import pyspark
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import array_to_vector

    from imagepipe.classifiers import FEATURE_VECTOR, ModelSpec, transform_stages
    from imagepipe.spark import get_spark

    settings = dict(item.split("=", 1) for item in args.settings.split(",") if item)
    partitions = int(settings.pop("partitions", args.cores))
    product_transforms = settings.pop("transforms", "product") != "none"
    features, labels = synthetic_features(args.rows, args.dims, args.classes, args.seed, args.separation)
    spark = get_spark("bench-train-logreg", {"spark.ui.enabled": "false", "spark.driver.memory": args.driver_memory})
    stages, features_column = (transform_stages(ModelSpec("logistic_regression")) if product_transforms
                               else ([], FEATURE_VECTOR))
    result = {"side": "mllib", "data_checksum": checksum(features, labels), "pyspark": pyspark.__version__,
              "partitions": partitions, "transforms": [type(stage).__name__ for stage in stages],
              "zero_fraction": float((features == 0).mean())}
    # Which BLAS MLlib runs on: native (a system libblas.so.3, e.g. Debian's OpenBLAS) or netlib's Java fallback.
    result["blas"] = spark._jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName()
    jvm = JvmPeak()
    flat = pa.array(features.reshape(-1))
    table = pa.table({
        "features": pa.FixedSizeListArray.from_arrays(flat, args.dims).cast(pa.list_(pa.float32())),
        "label": pa.array(labels.astype(np.float64)),
    })
    del features, flat
    data = (spark.createDataFrame(table)
            .select(array_to_vector("features").alias(FEATURE_VECTOR), "label")
            .repartition(partitions).cache())
    rows = data.count()
    del table
    assert rows == args.rows, rows
    params = {"family": "multinomial", "regParam": args.reg_param, "elasticNetParam": 0.0, "maxIter": args.max_iter,
              "tol": args.tol, "standardization": False}
    for key, value in settings.items():
        params[key] = {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(params[key], str):
            params[key] = float(value) if "." in value else int(value)
    result["params"] = params
    fits, cpus, load = [], [], os.getloadavg()[0]
    for _ in range(args.repeats):
        classifier = LogisticRegression(featuresCol=features_column, labelCol="label", **params)
        estimator = Pipeline(stages=[*stages, classifier])
        started, cpu = time.perf_counter(), jvm.cpu_seconds()
        model = estimator.fit(data).stages[-1]
        fits.append(time.perf_counter() - started)
        cpus.append(jvm.cpu_seconds() - cpu)
    summary = model.summary
    result.update({
        **fit_figures(fits, cpus, load),
        "iterations": summary.totalIterations,
        "seconds_per_iteration": min(fits) / summary.totalIterations,
        "train_accuracy": summary.accuracy,
        "objective": summary.objectiveHistory[-1],
        "peak_rss_mib": jvm.mib(),
        "python_driver_peak_rss_mib": peak_rss_mib(),
    })
    spark.stop()
    return result


def run_child(args, side: str, settings: str = "") -> dict:
    command = [sys.executable, __file__, "--child", side, "--settings", settings]
    for name in ("rows", "dims", "classes", "seed", "separation", "reg_param", "max_iter", "tol", "repeats", "cores",
                 "driver_memory"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    output = subprocess.run(command, capture_output=True, text=True)
    if output.returncode:
        sys.stderr.write(output.stderr[-4000:])
        raise SystemExit(f"{side} {settings} failed")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--separation", type=float, default=0.1, help="std of the class means per feature")
    parser.add_argument("--reg-param", type=float, default=0.01, help="MLlib regParam (the DAG's default)")
    parser.add_argument("--max-iter", type=int, default=100, help="the DAG's default")
    parser.add_argument("--tol", type=float, default=1e-6, help="MLlib's default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--mllib-variants", default="", help="';'-separated MLlib settings, e.g. 'aggregationDepth=3'")
    parser.add_argument("--child", choices=["sklearn", "mllib"], help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    if args.child:
        child = child_sklearn if args.child == "sklearn" else child_mllib
        print(json.dumps(child(args)))
        return

    results = {
        "machine": f"{platform.node()} {os.cpu_count()} cores", "python": platform.python_version(),
        "rows": args.rows, "dims": args.dims, "classes": args.classes, "seed": args.seed,
        "separation": args.separation, "reg_param": args.reg_param, "max_iter": args.max_iter, "tol": args.tol,
        "repeats": args.repeats, "cores": args.cores,
    }
    results["sklearn"] = run_child(args, "sklearn")
    results["mllib"] = run_child(args, "mllib")
    results["mllib_variants"] = [run_child(args, "mllib", v) for v in args.mllib_variants.split(";") if v]
    checksums = {r["data_checksum"] for r in [results["sklearn"], results["mllib"], *results["mllib_variants"]]}
    assert len(checksums) == 1, checksums
    for figure in ("fit_seconds_best", "fit_seconds_median", "fit_cpu_seconds_best"):
        results[f"mllib_vs_sklearn_{figure}"] = results["mllib"][figure] / results["sklearn"][figure]
    print(json.dumps(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
