"""How each job's cost grows with the lake: the pipeline's jobs, started as their tasks start them (spark-submit on a
local master with the conf the task adds, promote with plain Python), on N labelled images, then on incremental runs
that each add a share of new images to the N-image lake.

For every job: wall seconds, CPU seconds of its processes (sampled per process, or as the job's reaped children
count them, whichever is larger), peak resident memory of the driver's JVM, of the Python
driver and of the Python workers together (sampled every 0.2 s over the job's process tree), and the rows and bytes
it committed to the lake's tables (the added-records and added-files-size of each table's new snapshots).

Images are generated here, deterministically: ten classes (a scene of imagepipe.dev.sample_data in one of ten tints),
64 x 64, PNG and JPEG in turn, each with its own random scene so no two share their bytes (deduplication cannot
shrink a set). They go to moto's S3 server (started here); the lake and its catalog are on local paths. Features are
the demo's: the packaged pretrained EfficientNet-Lite0 at 64 px; training, evaluation and the gate use the form's
defaults, and promote forces a candidate its gate refused (each increment is then judged against a champion).

    .venv/bin/python bench/scale.py --sizes 1000 10000 100000 --increments 5 --policy-increments 5 \
        --json bench/scale_<machine>_<date>.json

Increments (after the largest size): --increments runs each adding --increment-share of that size as new images,
then --policy-increments more whose train task first checks the run's new images against --retrain-min-new-share
(imagepipe.retraining), as the pipeline DAG's does: below the share, the run keeps the champion and ends there.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from job_fixed_costs import start_s3  # noqa: E402  (bench/ is the script's folder)

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BUCKET = "scale"
JOBS = ("ingest_images", "extract_features", "train_classifier", "evaluate_model", "promote_model")
SIDE = 64
# Ten tints over the sample scenes: a class is a (scene, tint) pair, so classes differ in colour and layout.
TINTS = [(255, 255, 255), (255, 200, 200), (200, 255, 200), (200, 200, 255), (255, 255, 180), (255, 180, 255),
         (180, 255, 255), (230, 210, 170), (170, 170, 170), (255, 225, 200)]
SAMPLE_EVERY = 0.2  # seconds between two samples of the job's processes


def labelled_images(prefix: str, start: int, count: int):
    """Images start .. start+count-1 under the prefix (the same index, the same bytes): (key, bytes)."""
    from PIL import Image

    from imagepipe.dev import sample_data

    for index in range(start, start + count):
        label_index = index % len(TINTS)
        scene = sample_data.CLASSES[label_index % len(sample_data.CLASSES)]
        image = sample_data.draw_image(scene, random.Random(index)).convert("RGB").resize((SIDE, SIDE))
        image = Image.blend(image, Image.new("RGB", image.size, TINTS[label_index]), 0.35)
        kind = "png" if index % 2 else "jpeg"
        buffer = io.BytesIO()
        image.save(buffer, format=kind.upper())
        yield f"{prefix}/class_{label_index}/{index:07d}.{kind}", buffer.getvalue()


def upload(client, prefix: str, start: int, count: int, threads: int = 16) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]),
                      labelled_images(prefix, start, count)))


def task_conf(job: str) -> list[str]:
    """The --conf options a Spark task adds to `job` (SparkJobOperator._get_hook) with the form's default
    resources."""
    from imagepipe import params, settings, tables
    from imagepipe.spark import driver_conf

    resources = {"spark.executor.cores": str(params.SPARK_RESOURCES[0].default),
                 "spark.executor.memory": params.SPARK_RESOURCES[1].default,
                 "spark.sql.shuffle.partitions": str(params.SPARK_RESOURCES[2].default)}
    conf = driver_conf("local[2]", {**tables.spark_conf(), **settings.cluster_spark_conf(), **resources}, job)
    return [option for key, value in conf.items() for option in ("--conf", f"{key}={value}")]


def job_command(job: str, run_id: str, lake: str, source_uri: str, weights: str, window_end: str) -> list[str]:
    args = ["--run-id", run_id, "--lake-root", lake]
    args += {
        "ingest_images": ["--source-uri", source_uri, "--window-end", window_end],
        "extract_features": ["--backbone", "timm:tf_efficientnet_lite0", "--weights", weights,
                             "--image-size", str(SIDE)],
        "train_classifier": [],
        "evaluate_model": [],
        # Every run's candidate is promoted, passed or forced, so each increment is judged against a champion.
        "promote_model": ["--force-reason", "scale bench: every candidate is promoted"],
    }[job]
    script = str(PROJECT / "spark_jobs" / f"{job}.py")
    if job == "promote_model":  # a LocalJobOperator task: the worker's Python, no JVM
        return [sys.executable, script, *args]
    return [str(VENV_BIN / "spark-submit"), "--master", "local[2]", *task_conf(job), "--name", job, script, *args]


def kind_of(process) -> str | None:
    """driver_jvm, python_driver or python_worker, by the process's command line."""
    try:
        command = " ".join(process.cmdline())
    except Exception:  # noqa: BLE001 (gone between listing and reading)
        return None
    if "java" in process.name() or "org.apache.spark" in command:
        return "driver_jvm"
    if "pyspark.daemon" in command or "pyspark/daemon" in command or "pyspark.worker" in command:
        return "python_worker"
    if "python" in process.name() or command.startswith(sys.executable):
        return "python_driver"
    return None


def sample_peaks(root_pid: int, peaks: dict[str, int], cpu: dict[int, float], stop: threading.Event) -> None:
    """Peak RSS (bytes) of each kind of process under root_pid, workers summed at each instant; and each process's
    own CPU seconds as last seen, by pid."""
    import psutil

    try:
        root = psutil.Process(root_pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        totals: dict[str, int] = {}
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for process in processes:
            kind = kind_of(process)
            try:
                rss = process.memory_info().rss
                times = process.cpu_times()
            except psutil.Error:
                continue
            cpu[process.pid] = times.user + times.system  # children's would count a reaped worker twice
            if kind == "python_worker":
                totals[kind] = totals.get(kind, 0) + rss
            elif kind:
                totals[kind] = max(totals.get(kind, 0), rss)
        for kind, value in totals.items():
            peaks[kind] = max(peaks.get(kind, 0), value)
        stop.wait(SAMPLE_EVERY)


def table_snapshots(env: dict[str, str]) -> dict[str, tuple[int | None, int, int]]:
    """Each lake table's (current snapshot id, total records, total files size), read through pyiceberg."""
    script = """
import json
from imagepipe import tables
catalog = tables.python_catalog()
found = {}
for namespace in catalog.list_namespaces():
    for identifier in catalog.list_tables(namespace):
        snapshot = catalog.load_table(identifier).current_snapshot()
        summary = snapshot.summary if snapshot else None
        found[".".join(identifier)] = [snapshot.snapshot_id if snapshot else None,
                                       int(summary["total-records"]) if summary else 0,
                                       int(summary["total-files-size"]) if summary else 0]
print(json.dumps(found))
"""
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else {}


def run_job(argv: list[str], env: dict[str, str]) -> dict:
    before = table_snapshots(env)
    peaks: dict[str, int] = {}
    cpu: dict[int, float] = {}
    stop = threading.Event()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = threading.Thread(target=sample_peaks, args=(process.pid, peaks, cpu, stop), daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[-8:])} failed ({process.returncode}):\n{output[-4000:]}")
    after = table_snapshots(env)
    changed = {name: now for name, now in after.items() if before.get(name, [None])[0] != now[0]}
    rows = sum(now[1] - before.get(name, [None, 0, 0])[1] for name, now in changed.items())
    written = sum(now[2] - before.get(name, [None, 0, 0])[2] for name, now in changed.items())
    reaped = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    # The processes' own counters, last seen at most SAMPLE_EVERY before each ended, count forked Python workers
    # that no waiting parent folds into the job's rusage; the larger of the two is the nearer to the truth.
    return {"seconds": round(seconds, 1), "last_line": (output.strip().splitlines() or [""])[-1],
            "cpu_seconds": round(max(reaped, sum(cpu.values())), 1),
            "peak_rss_mb": {kind: round(value / 2**20) for kind, value in sorted(peaks.items())},
            "rows_written": rows, "bytes_written": written, "tables_changed": sorted(changed)}


# What the train task's pre_execute hook runs (imagepipe.airflow.task_guards.skip_unless_retrain_due) with the
# form's training settings, in the worker's Python: argv lake, run id, retrain_min_new_share.
RETRAIN_CHECK = """
import json, sys
from imagepipe import params, retraining
from imagepipe.classifiers import model_spec
from imagepipe.lake import Lake
from imagepipe.registry import open_registry
lake, run_id, share = sys.argv[1], sys.argv[2], float(sys.argv[3])
form = {name: param.default for name, param in params.form_fields(params.TRAIN).items()}
model = model_spec(form["classifier"], form["hyperparameters"], form["feature_transforms"], form["class_weights"],
                   form["selection_folds"]).to_json()
verdict = retraining.check_run(Lake(lake), open_registry("image_classifier", None, lake), run_id, model, None, share)
print(json.dumps({"due": verdict.due, "reason": verdict.reason}))
"""


def pipeline_run(run_id: str, lake: str, source_uri: str, weights: str, env: dict[str, str],
                 retrain_min_new_share: float | None = None) -> dict:
    """Each job's figures; with retrain_min_new_share, the train task's retraining check runs before training, and
    a run it finds below the share ends there (train, evaluate and promote skipped)."""
    window_end = datetime.now(timezone.utc).isoformat()
    figures = {}
    for job in JOBS:
        if job == "train_classifier" and retrain_min_new_share is not None:
            check = run_job([sys.executable, "-c", RETRAIN_CHECK, lake, run_id, str(retrain_min_new_share)], env)
            verdict = json.loads(check.pop("last_line"))
            figures["retrain_check"] = {**check, **verdict}
            print(f"  {run_id} retrain_check: {figures['retrain_check']}", flush=True)
            if not figures["retrain_check"]["due"]:
                break
        figures[job] = run_job(job_command(job, run_id, lake, source_uri, weights, window_end), env)
        figures[job].pop("last_line")
        print(f"  {run_id} {job}: {figures[job]}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--increments", type=int, default=0, help="incremental runs on the largest size's lake")
    parser.add_argument("--increment-share", type=float, default=0.01)
    parser.add_argument("--policy-increments", type=int, default=0,
                        help="then incremental runs whose train task checks --retrain-min-new-share first")
    parser.add_argument("--retrain-min-new-share", type=float, default=0.05)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    from imagepipe.dev import packaged_weights

    weights = str(packaged_weights.install())
    server, env = start_s3()
    from imagepipe.object_store import s3_client

    results = {"sizes": {}, "increments": [], "policy_increments": []}
    work = Path(tempfile.mkdtemp(prefix="imagepipe-scale-"))
    s3_client().create_bucket(Bucket=BUCKET)
    try:
        for size in sorted(args.sizes):  # each size its own prefix, lake and catalog
            prefix = f"images_{size}"
            started = time.perf_counter()
            upload(s3_client(), prefix, 0, size)
            print(f"{size} images generated and uploaded in {time.perf_counter() - started:.0f} s", flush=True)
            data = work / str(size)
            size_env = {**env, "IMAGEPIPE_DATA_DIR": str(data), "IMAGEPIPE_MODEL_CACHE": str(data / "model_cache")}
            lake, source_uri = str(data / "lake"), f"s3://{BUCKET}/{prefix}/"
            results["sizes"][size] = pipeline_run("manual__full", lake, source_uri, weights, size_env)
        largest = max(args.sizes)
        added = max(1, round(largest * args.increment_share))
        for index in range(args.increments + args.policy_increments):
            time.sleep(1.1)  # the new objects' LastModified after the previous window's end, to the second
            upload(s3_client(), prefix, largest + index * added, added)
            policy = index >= args.increments
            figures = pipeline_run(f"manual__increment_{index + 1}", lake, source_uri, weights, size_env,
                                   args.retrain_min_new_share if policy else None)
            results["policy_increments" if policy else "increments"].append(
                {"added": added, "lake_images": largest + (index + 1) * added, **figures})
    finally:
        server.stop()
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    document = {"machine": machine,
                "date": datetime.now(timezone.utc).date().isoformat(), "commit": head,
                "command": " ".join([Path(sys.executable).name, *sys.argv]), **results}
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
