"""The lake's two catalog choices side by side: Iceberg's JDBC catalog on an embedded SQLite file (the laptop's) and
on a PostgreSQL server (production's), measured with the commits the jobs make.

For each catalog, in one Spark session (local[2], the jobs' conf from imagepipe.tables): the time of a one-commit
dynamic partition overwrite of a small partition, repeated; then WRITERS processes at once, each committing its own
partitions of one table as fast as it can (what datasets' jobs and retries do beside each other), counting the
commits that succeeded, the ones that failed, and whether the table holds every committed row.

    .venv/bin/python bench/catalog_commits.py --commits 20 --writers 3 --json out.json

PostgreSQL is started here from Debian's binaries (as the tests do); SQLite needs nothing.
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
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))  # the tests' PostgreSQL server helper

# One writer: COMMITS one-commit overwrites of its own partition of the table, each timed; prints JSON.
WRITER = """
import json, sys, time
from imagepipe import tables
from imagepipe.lake import Lake
from imagepipe.spark import get_spark
root, name, commits = sys.argv[1], sys.argv[2], int(sys.argv[3])
spark = get_spark("catalog-bench", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})
table = Lake(root).images
frame = spark.range(100).selectExpr("CAST(id AS STRING) AS key", "repeat('x', 1000) AS content")
seconds, failed = [], []
for index in range(commits):
    rows = frame.selectExpr("key", "content", f"'{name}-{index:03d}' AS window_id")
    started = time.perf_counter()
    try:
        tables.overwrite_partitions(rows, table, "window_id")
        seconds.append(time.perf_counter() - started)
    except Exception as error:  # a commit that lost: what a writer would see
        failed.append(str(error).splitlines()[0][:300])
print("RESULT " + json.dumps({"seconds": seconds, "failed": failed}))
"""


def run_writers(catalog_uri: str, root: str, writers: int, commits: int, work: Path) -> list[dict]:
    env = {**os.environ, "IMAGEPIPE_CATALOG_URI": catalog_uri, "IMAGEPIPE_SPARK_MASTER": "local[1]",
           "IMAGEPIPE_DATA_DIR": str(work)}
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, root, f"w{index}", str(commits)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for index in range(writers)]
    results = []
    for process in processes:
        output = process.communicate(timeout=1800)[0]
        [line] = [line for line in output.splitlines() if line.startswith("RESULT ")]
        results.append(json.loads(line.removeprefix("RESULT ")))
    return results


def committed_rows(catalog_uri: str, root: str, work: Path) -> int:
    check = ("from imagepipe.lake import Lake\nfrom imagepipe.spark import get_spark\nimport sys\n"
             "spark = get_spark('count', {'spark.ui.enabled': 'false'})\n"
             "print('ROWS', spark.table(Lake(sys.argv[1]).images.identifier).count())\n")
    env = {**os.environ, "IMAGEPIPE_CATALOG_URI": catalog_uri, "IMAGEPIPE_DATA_DIR": str(work)}
    output = subprocess.run([sys.executable, "-c", check, root], env=env, capture_output=True, text=True,
                            check=True).stdout
    return int(next(line for line in output.splitlines() if line.startswith("ROWS")).split()[1])


def measure(label: str, catalog_uri: str, commits: int, writers: int, work: Path) -> dict:
    alone = run_writers(catalog_uri, str(work / label / "alone"), 1, commits, work)[0]
    together = run_writers(catalog_uri, str(work / label / "together"), writers, commits, work)
    succeeded = sum(len(result["seconds"]) for result in together)
    figures = {
        "alone_commit_s_median": round(statistics.median(alone["seconds"]), 3),
        "alone_commit_s_max": round(max(alone["seconds"]), 3),
        "alone_failed": len(alone["failed"]),
        "together_commit_s_median": round(statistics.median(s for r in together for s in r["seconds"]), 3),
        "together_succeeded": succeeded,
        "together_failed": sum(len(result["failed"]) for result in together),
        "together_failures": sorted({failure for result in together for failure in result["failed"]})[:5],
        "together_rows_in_table": committed_rows(catalog_uri, str(work / label / "together"), work),
        "together_rows_committed": succeeded * 100,
    }
    print(label, json.dumps(figures), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    from scheduler.postgres_server import PostgresServer

    work = Path(tempfile.mkdtemp(prefix="imagepipe-catalog-bench-"))
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
               "cores": os.cpu_count(), "commits": args.commits, "writers": args.writers, "catalogs": {}}
    started = time.perf_counter()
    results["catalogs"]["sqlite"] = measure("sqlite", f"jdbc:sqlite:{work / 'catalog.sqlite'}", args.commits,
                                            args.writers, work)
    with PostgresServer() as server:
        server.create_database("imagepipe_catalog")
        uri = f"jdbc:postgresql://127.0.0.1:{server.port}/imagepipe_catalog?user=airflow"
        results["catalogs"]["postgresql"] = measure("postgresql", uri, args.commits, args.writers, work)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
