"""The whole pipeline on a few thousand small images through `airflow dags test`, a base commit against this checkout,
both in one session on the same images, and whether their outputs are the same.

Each tree gets its own Airflow home (SQLite), lake and registry, its own DAG and plugin folders, and its library
first on PYTHONPATH; both read the same images from one S3 endpoint (moto's server, started here). The run is timed
from `airflow dags test` to its exit, and each task's duration is read from the run's log. Outputs compared: the
ingest report's counts, the feature rows, the model's labels and rows, and its test metrics.

    .venv/bin/python bench/pipeline_old_new.py --base 645513d --images 3000 --json out.json

A base that needs other packages than this checkout (another Spark release) runs on --base-python, e.g. a venv with
that release whose site-packages are followed by this venv's (a .pth naming them) for everything else; the base
tree's own class archive is built for it first, as its `make install` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from extract_small_images import small_images  # noqa: E402  (bench/ is the script's folder)
from job_fixed_costs import start_s3  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
DAG_ID = "image_classifier_pipeline"


def tree_env(base_env: dict[str, str], tree: Path, work: Path, python: str) -> dict[str, str]:
    """The tree's environment: its library first, its interpreter (and that one's spark-submit) for every process."""
    bin_dir = str(Path(python).parent)
    return {**base_env, "PYTHONPATH": str(tree / "src"), "AIRFLOW_HOME": str(work / "airflow"),
            "PATH": f"{bin_dir}:{base_env['PATH']}", "PYSPARK_PYTHON": python,
            "IMAGEPIPE_DATA_DIR": str(work), "IMAGEPIPE_MODEL_CACHE": str(work / "model_cache"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(tree / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(tree / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "IMAGEPIPE_WEIGHTS": "random:0",
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
                {"conn_type": "spark", "host": "local[*]", "extra": {"deploy-mode": "client"}})}


def outputs(work: Path) -> dict:
    """What a user reads of the run: counts, the model's labels and rows, its test metrics."""
    lake = work / "lake"
    [run] = [path for path in (lake / "runs").iterdir() if (path / "candidate.json").exists()]
    ingest = json.loads((run / "ingest.json").read_text())
    features = json.loads((run / "features.json").read_text())
    candidate = json.loads((run / "candidate.json").read_text())
    version = lake / "registry" / candidate["model_name"] / "versions" / str(candidate["version"])
    metadata = json.loads((version / "metadata.json").read_text())
    metrics = json.loads((version / "metrics.json").read_text())["candidate"]
    return {"ingested": ingest["ingested"], "rejected": ingest["rejected"], "feature_rows": features["rows"],
            "labels": metadata["labels"], "rows": metadata["rows"],
            "metrics": {name: metrics[name] for name in ("accuracy", "macro_f1", "rows")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--side", type=int, default=28)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--base-python", default=sys.executable,
                        help="the interpreter the base tree runs on (default: this one)")
    args = parser.parse_args()

    server, env = start_s3()
    from imagepipe.dev import sample_data
    from imagepipe.object_store import s3_client

    work = Path(tempfile.mkdtemp(prefix="imagepipe-pipeline-old-new-"))
    trees = {"base": work / "base-tree", "this": PROJECT}
    pythons = {"base": args.base_python, "this": sys.executable}
    subprocess.run(["git", "-C", str(PROJECT), "worktree", "add", "--detach", str(trees["base"]), args.base],
                   check=True, capture_output=True)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
               "cores": os.cpu_count(), "images": args.images, "side": args.side, "base": args.base,
               "base_python": args.base_python, "runs": {}}
    try:
        sample_data.upload(s3_client(), "bench", "images", small_images(args.images, args.side))
        conf = json.dumps({"source_uri": "s3://bench/images/"})
        for name, tree in trees.items():
            python = pythons[name]
            run_env = tree_env(env, tree, work / name, python)
            subprocess.run([python, "-m", "imagepipe.jvm_class_archive", "build"], env=run_env, check=True,
                           capture_output=True)
            subprocess.run([python, "-m", "airflow", "db", "migrate"], env=run_env, check=True, capture_output=True)
            started = time.perf_counter()
            result = subprocess.run([python, "-m", "airflow", "dags", "test", DAG_ID, "--conf", conf],
                                    env=run_env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            (work / f"{name}.log").write_text(result.stdout + result.stderr)
            if result.returncode != 0:
                raise SystemExit(f"{name}: the run failed; log: {work / f'{name}.log'}")
            results["runs"][name] = {"seconds": round(seconds, 1), "outputs": outputs(work / name)}
            print(name, json.dumps(results["runs"][name]), flush=True)
    finally:
        subprocess.run(["git", "-C", str(PROJECT), "worktree", "remove", "--force", str(trees["base"])], check=False)
        server.stop()
    runs = results["runs"]
    results["this"] = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
    results["this_over_base"] = round(runs["this"]["seconds"] / runs["base"]["seconds"], 3)
    results["same_outputs"] = runs["this"]["outputs"] == runs["base"]["outputs"]
    results["logs"] = str(work)
    print(json.dumps({key: results[key] for key in ("this_over_base", "same_outputs", "logs")}))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
