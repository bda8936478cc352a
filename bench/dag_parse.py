"""Parse time of every DAG file, as Airflow's DagBag measures it, each parse in a fresh interpreter.

A DAG file is parsed again and again by the dag-processor, so it must import nothing heavy at top level; the target
is at most 0.25 s per file. Each repeat starts a new Python process that first imports what the dag-processor
already has loaded (Airflow's DagBag), freezes those objects out of the garbage collector's sight as the
dag-processor does before forking a parser, and then parses the one file with DagBag, whose own per-file duration is
reported with the CPU time of the same parse: the cost of the file's imports (imagepipe, the Spark provider) and of
building its DAG. On a shared machine the wall clock grows with the load; the CPU time barely does. The process also
lists the heavy modules (torch, torchvision, pyspark, boto3, pandas) the parse imported, which must be none.

    .venv/bin/python bench/dag_parse.py --repeats 7 --json bench/dag_parse_vm2cores_2026-11-27.json

With --datasets N, a datasets file declaring N datasets besides the default one is used, so each DAG file builds
N + 1 DAGs, and each file is also parsed as a task's process parses it (Airflow's parsing context naming one
dataset's DAG), which builds that DAG alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"
TARGET_S = 0.25
HEAVY = ("torch", "torchvision", "pyspark", "boto3", "pandas")

_PROBE = """
import gc, json, sys, time
from airflow.dag_processing.dagbag import DagBag
gc.freeze()  # as the dag-processor does before it forks a parser: the parse's collections skip Airflow's own objects
before = set(sys.modules)
cpu = time.process_time()
bag = DagBag(dag_folder=sys.argv[1])
cpu = time.process_time() - cpu
[stat] = bag.dagbag_stats
heavy = sorted(name for name in set(sys.modules) - before if name.split(".")[0] in sys.argv[2].split(","))
print(json.dumps({"seconds": stat.duration.total_seconds(), "cpu_seconds": cpu, "dags": stat.dag_num,
                  "tasks": stat.task_num,
                  "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "heavy": sorted({name.split(".")[0] for name in heavy})}))
"""


def parse_in_fresh_interpreter(path: Path, timeout: float = 300, for_dag: str | None = None) -> dict:
    """DagBag's parse duration (wall clock) of one DAG file in a new Python process, the CPU time of that parse (what
    a busy machine does not inflate), its DAG and task counts, import errors, and the heavy modules it imported.
    `for_dag`: parse as a task of that DAG does (Airflow's parsing context)."""
    env = dict(os.environ, **({"_AIRFLOW_PARSING_CONTEXT_DAG_ID": for_dag} if for_dag else {}))
    env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="imagepipe-dag-parse-"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    result = subprocess.run([sys.executable, "-c", _PROBE, str(path), ",".join(HEAVY)], capture_output=True,
                            text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"parsing {path.name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh-process parses per file (default: %(default)s)")
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--datasets", type=int, default=0, help="datasets declared besides the default one")
    args = parser.parse_args()
    if args.datasets:
        declared = Path(tempfile.mkdtemp(prefix="imagepipe-datasets-")) / "datasets.toml"
        declared.write_text("".join(f'[datasets.set{index:02d}]\nsource_uri = "s3://photos/set{index:02d}/"\n'
                                    f'scoring_uri = "s3://photos/inbox{index:02d}/"\n'
                                    for index in range(args.datasets)))
        os.environ["IMAGEPIPE_DATASETS_FILE"] = str(declared)
    # Each file as the dag-processor parses it, then (with datasets) as a task of the first dataset's DAG does.
    parses = [(path, for_dag) for path in sorted(DAGS.glob("*.py"))
              for for_dag in ([None, f"{path.stem}__set00"] if args.datasets else [None])]
    results = {}
    for path, for_dag in parses:
        runs = [parse_in_fresh_interpreter(path, for_dag=for_dag) for _ in range(args.repeats)]
        seconds = [run["seconds"] for run in runs]
        cpu = [run["cpu_seconds"] for run in runs]
        name = path.name if for_dag is None else f"{path.name} as a task of {for_dag}"
        results[name] = {
            "median_s": round(statistics.median(seconds), 4), "max_s": round(max(seconds), 4),
            "cpu_median_s": round(statistics.median(cpu), 4), "cpu_max_s": round(max(cpu), 4),
            "runs_s": [round(value, 4) for value in seconds], "dags": runs[0]["dags"], "tasks": runs[0]["tasks"],
            "errors": runs[0]["errors"], "heavy_imports": sorted({name for run in runs for name in run["heavy"]}),
        }
        row = results[name]
        print(f"{name:32s} dags {row['dags']:2d}  median {row['median_s']:.3f} s  max {row['max_s']:.3f} s  "
              f"(CPU median {row['cpu_median_s']:.3f} s, max {row['cpu_max_s']:.3f} s)  tasks {row['tasks']:2d}  "
              f"heavy imports: {', '.join(row['heavy_imports']) or 'none'}", flush=True)
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1_5_15": os.getloadavg()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "repeats": args.repeats,
        "datasets_declared": args.datasets,
        "target_s": TARGET_S,
        "files": results,
        "within_target": all(row["max_s"] <= TARGET_S for row in results.values()),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
