"""Fixed cost of each pipeline job, side by side: the jobs of a base commit against the jobs of this checkout, on the
same tiny window (a dozen images), each started the way the pipeline's task starts it and timed from start to exit.
With so few images nearly all of a job's time is fixed: JVM and session start, Python workers, imports, model builds,
the reads, counts and writes that do not grow with the data. Each job's CPU seconds (its processes' user and system
time) count too: on a machine shared with other jobs they are what the others wait for.

The base commit's code runs from a `git worktree` of it, its library first on PYTHONPATH (ahead of the installed
one). Each tree gets its own lake; both read the same images from one S3 endpoint (moto's server, started here). The
two trees take turns, job by job, so the machine's load weighs on both alike.

    .venv/bin/python bench/job_fixed_costs.py --base b745256 --json bench/job_fixed_costs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
RUN_ID = "manual__bench"
# The scheduler tests' small run: every job does its real work on a handful of 32-pixel images.
JOB_ARGS = {
    "ingest_images": ["--window-end", "2100-01-01T00:00:00Z"],
    "extract_features": ["--weights", "random:0", "--image-size", "32"],
    "train_classifier": ["--min-examples-per-class", "1", "--hyperparameters", '{"max_iter": 10}'],
    "evaluate_model": ["--min-test-images", "1", "--min-accuracy", "none"],
    "promote_model": [],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_s3(**extra: str):
    """moto's S3 server on a free port, with boto3, Spark's Python and this process pointed at it (and `extra`): the
    server, to stop, and that environment, for the jobs' processes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the endpoint's access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "PYSPARK_PYTHON": sys.executable, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **extra})
    return server, dict(os.environ)


def runs_without_spark(tree: Path, job: str) -> bool:
    """Whether the tree's pipeline runs the job with plain Python (a LocalJobOperator task) instead of spark-submit."""
    dag = (tree / "dags" / "image_classifier_pipeline.py").read_text()
    return "LocalJobOperator(" in dag and job == "promote_model"


# What the tree's own Spark task adds to a local job's spark-submit (nothing before the tree had driver_conf).
TREE_DRIVER_CONF = """
import json
try:
    from imagepipe.spark import driver_conf
except ImportError:
    driver_conf = lambda master, conf: conf
print(json.dumps(driver_conf("local[2]", {})))
"""


def local_driver_conf(tree: Path) -> list[str]:
    """The --conf options the tree's Spark task adds on a local master, as the tree's own code computes them."""
    tree_env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    printed = subprocess.run([sys.executable, "-c", TREE_DRIVER_CONF], env=tree_env, capture_output=True, text=True,
                             check=True).stdout
    return [option for key, value in json.loads(printed).items() for option in ("--conf", f"{key}={value}")]


def command(tree: Path, job: str, lake: str, source_uri: str) -> list[str]:
    args = ["--run-id", RUN_ID, "--lake-root", lake, *JOB_ARGS[job]]
    if job == "ingest_images":
        args += ["--source-uri", source_uri]
    script = str(tree / "spark_jobs" / f"{job}.py")
    if runs_without_spark(tree, job):
        return [sys.executable, script, *args]
    return [str(VENV_BIN / "spark-submit"), "--master", "local[2]", *local_driver_conf(tree), "--name", job, script,
            *args]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user and system) of the job's processes that ended with it."""
    started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds, cpu_after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{argv[-1]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare with (e.g. main before the change)")
    parser.add_argument("--per-class", type=int, default=3, help="images per class of the sample set")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    server, env = start_s3()
    from imagepipe.dev import sample_data
    from imagepipe.object_store import s3_client

    images = sample_data.upload(s3_client(), "bench", "images", sample_data.generate(per_class=args.per_class))
    source_uri = "s3://bench/images/"
    work = Path(tempfile.mkdtemp(prefix="imagepipe-fixed-costs-"))
    base_tree = work / "base"
    subprocess.run(["git", "-C", str(PROJECT), "worktree", "add", "--detach", str(base_tree), args.base],
                   check=True, capture_output=True)
    trees = {"base": base_tree, "this": PROJECT}
    seconds: dict[str, dict[str, float]] = {name: {} for name in trees}
    cpu_seconds: dict[str, dict[str, float]] = {name: {} for name in trees}
    try:
        for job in JOB_ARGS:
            for name, tree in trees.items():
                tree_env = {**env, "PYTHONPATH": str(tree / "src"), "IMAGEPIPE_DATA_DIR": str(work / name),
                            "IMAGEPIPE_MODEL_CACHE": str(work / name / "model_cache")}
                argv = command(tree, job, str(work / name / "lake"), source_uri)
                wall, cpu = timed(argv, tree_env)
                seconds[name][job], cpu_seconds[name][job] = round(wall, 1), round(cpu, 1)
                started_by = "python" if argv[0] == sys.executable else "spark-submit"
                print(f"{name:5} {job:17} {wall:6.1f} s  {cpu:6.1f} CPU s  ({started_by})", flush=True)
    finally:
        subprocess.run(["git", "-C", str(PROJECT), "worktree", "remove", "--force", str(base_tree)], check=False)
        server.stop()
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
              "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(), "images": images, "base": args.base,
              "this": head, "seconds": seconds, "cpu_seconds": cpu_seconds,
              "total": {name: round(sum(jobs.values()), 1) for name, jobs in seconds.items()},
              "total_cpu": {name: round(sum(jobs.values()), 1) for name, jobs in cpu_seconds.items()}}
    print(json.dumps({"wall": result["total"], "cpu": result["total_cpu"]}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
