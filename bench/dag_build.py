"""CPU time Airflow spends building each DAG of the project, with the trigger form's schemas in the JSON Schema
dialect they declare (draft-07) against the dialect jsonschema otherwise assumes (2020-12), side by side.

Airflow checks every Param's schema against its dialect's meta-schema each time it builds a DAG; that check is part
of every parse of every DAG file. One process imports each DAG file once, then builds its default dataset's DAG
`--builds` times per dialect, the dialects taking turns round after round, so the machine's load weighs on both
alike. A parse in a fresh process (bench/dag_parse.py) adds the imports to these figures and a wide spread.

    .venv/bin/python bench/dag_build.py --rounds 5 --builds 10 --json bench/dag_build_vm2cores_2026-12-02.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"
# Each DAG file's builder, called with a dataset.
BUILDERS = {"image_classifier_pipeline": "pipeline", "image_batch_scoring": "batch_scoring",
            "image_classifier_rollback": "rollback_dag"}


def load(stem: str):
    spec = importlib.util.spec_from_file_location(f"bench_{stem}", DAGS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, BUILDERS[stem])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--builds", type=int, default=10, help="DAGs built per dialect per round")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from imagepipe import datasets, run_param
    from imagepipe.airflow import dag_shape

    declared = run_param.DIALECT
    dialects = {"2020-12 (no $schema)": {}, "draft-07 (declared)": declared}
    results = {}
    for stem in BUILDERS:
        build = load(stem)
        [dataset] = [each for each in dag_shape.datasets_for_dag_file(stem) if each.name == datasets.DEFAULT]
        samples = {label: [] for label in dialects}
        for _ in range(args.rounds):
            for label, dialect in dialects.items():
                run_param.DIALECT = dialect
                started = time.process_time()
                for _ in range(args.builds):
                    build(dataset)
                samples[label].append((time.process_time() - started) / args.builds)
        run_param.DIALECT = declared
        results[stem] = {label: round(statistics.median(values), 4) for label, values in samples.items()}
        print(stem, json.dumps(results[stem]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
            "python": platform.python_version(), "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "rounds": args.rounds,
            "builds": args.builds, "median_cpu_s_per_dag": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
