"""How the Models page, a version page and `python -m imagepipe.registry list` answer with many versions, in a
registry on a local path and on the S3 endpoint (moto's server, started here).

The registry is written through the library (allocate_version, write_document, promote), as train_classifier,
evaluate_model and promote_model leave it: every version with its metadata, metrics (ten classes, a gallery) and
verdict; two in three pass their gate and become champion, so the champion history holds two thirds of the versions;
the newest version also holds its report's files. Timed: the Models page, the newest and the first version's pages,
the first page of every version and of every champion change, and the command line's list. Pages are requested from
Airflow's own api-server app built in this process (the project's plugins, the simple auth manager, a migrated SQLite
database), as a logged-in viewer, through FastAPI's TestClient: the page's whole server-side time, without a network.

    .venv/bin/python bench/registry_pages.py --versions 500 --json bench/registry_pages_<machine>_<date>.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from job_fixed_costs import start_s3  # noqa: E402  (bench/ is the script's folder)

PROJECT = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).parent / "airflow"
MODEL = "image_classifier"
LABELS = [f"class_{index}" for index in range(10)]
REPEATS = 5


def candidate_metrics(accuracy: float) -> dict:
    per_class = {label: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 100} for label in LABELS}
    counts = [[90 if row == column else (10 if column == (row + 1) % 10 else 0) for column in range(10)]
              for row in range(10)]
    return {"rows": 1000, "accuracy": accuracy, "macro_f1": accuracy - 0.01, "weighted_f1": accuracy - 0.01,
            "log_loss": 0.3, "per_class": per_class, "confusion_matrix": {"labels": LABELS, "counts": counts}}


def gallery_rows(version: int) -> dict:
    from imagepipe import gallery

    def row(kind: str, index: int) -> dict:
        sha256 = f"{version:08d}{kind}{index:055d}"[:64]
        return {"sha256": sha256, "label": LABELS[index % 10], "predicted": LABELS[(index + 1) % 10],
                "probability": 0.8, "window_id": "w", "thumbnail": gallery.thumbnail_name(sha256)}

    return {"thumbnail_side": gallery.THUMBNAIL_SIDE, "probabilities": True, "misclassified_total": 100,
            "misclassified": [row("m", index) for index in range(24)],
            "correct": [row("c", index) for index in range(10)], "correct_each": 1, "correct_classes": 10,
            "classes_tested": 10}


def build(registry_root: str, versions: int) -> float:
    """The registry's versions and champion history; the seconds it took to write them."""
    from imagepipe import report
    from imagepipe.gate import Thresholds, decide
    from imagepipe.registry import Registry

    registry = Registry(registry_root, MODEL)
    started = time.perf_counter()
    champion = None
    for index in range(versions):
        run_id = f"scheduled__{datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp() + index * 86400:.0f}"
        version = registry.allocate_version(run_id)
        accuracy = 0.9 if index % 3 else 0.5  # one in three fails its gate
        metadata = {"version": version, "model_name": MODEL, "labels": LABELS, "fingerprint": "timm-x-0123456789ab",
                    "model": {"classifier": "logistic_regression"}, "hyperparameters": {"reg_param": 0.01},
                    "rows": {"train": {label: 800 for label in LABELS}}, "run_id": run_id,
                    "dag_id": "image_classifier_pipeline"}
        registry.write_document(version, "metadata", metadata)
        candidate, shown = candidate_metrics(accuracy), gallery_rows(version)
        champion_metrics = None if champion is None else {**candidate_metrics(0.9), "version": champion}
        registry.write_document(version, "metrics", {"candidate": candidate, "champion": champion_metrics,
                                                     "champion_version": champion, "gallery": shown})
        verdict = dataclasses.replace(decide(candidate, champion_metrics, Thresholds()), candidate_version=version,
                                      champion_version=champion, run_id=run_id)
        if index == versions - 1:
            registry.write_files(version, report.files(metadata, candidate, champion_metrics, verdict, shown))
        registry.write_verdict(version, verdict)
        if verdict.passed:
            registry.promote(version, champion, run_id, "verdict passed")
            champion = version
    return time.perf_counter() - started


def airflow_app():
    """Airflow's api-server app as the UI tests build it, and a TestClient logged in as a viewer. The pages read the
    lake (and its registry) that IMAGEPIPE_LAKE_ROOT names when they are requested."""
    home = tempfile.mkdtemp(prefix="imagepipe-bench-airflow-")
    os.environ.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
                       "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
                       "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "viewer:viewer"})
    os.environ.pop("IMAGEPIPE_REGISTRY_URI", None)
    # The viewer's password, written where the simple auth manager keeps them, so it never generates one and prints it.
    (Path(home) / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({"viewer": secrets.token_urlsafe(16)}))
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([str(AIRFLOW), *command], check=True, capture_output=True)
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    app = create_app()
    client = TestClient(app, headers={"Origin": "http://testserver"})
    passwords = json.loads((Path(home) / "simple_auth_manager_passwords.json.generated").read_text())
    token = client.post("/auth/token", json={"username": "viewer", "password": passwords["viewer"]}).json()
    client.cookies.set("_token", token["access_token"])
    return client


def timed_get(client, path: str) -> dict:
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = client.get(path)
        seconds.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code} {answer.text[:500]}")
    return {"first_s": round(seconds[0], 3), "median_s": round(statistics.median(seconds), 3),
            "bytes": len(answer.content)}


def timed_cli(registry_root: str) -> dict:
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "imagepipe.registry", "--registry-uri", registry_root, "list"],
                       check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return {"first_s": round(seconds[0], 3), "median_s": round(statistics.median(seconds), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    server, _ = start_s3()
    from imagepipe.lake import Lake
    from imagepipe.object_store import s3_client

    s3_client().create_bucket(Bucket="registry-pages")
    lakes = {"local": str(Path(tempfile.mkdtemp(prefix="imagepipe-registry-pages-")) / "lake"),
             "s3": "s3://registry-pages/lake"}
    results = {}
    client = airflow_app()
    # The app's own first request (templates compiled, the lake's table reader imported), on an empty lake, so that
    # each registry's first request below is the registry's cost.
    os.environ["IMAGEPIPE_LAKE_ROOT"] = str(Path(tempfile.mkdtemp(prefix="imagepipe-registry-pages-empty-")))
    results["app_first_request"] = timed_get(client, "/imagepipe/models")
    print("app_first_request", json.dumps(results["app_first_request"]), flush=True)
    try:
        for where, lake_root in lakes.items():
            built = build(Lake(lake_root).registry, args.versions)
            os.environ["IMAGEPIPE_LAKE_ROOT"] = lake_root
            results[where] = {
                "build_s": round(built, 1),
                "models_page": timed_get(client, "/imagepipe/models"),
                "version_page": timed_get(client, f"/imagepipe/models/{MODEL}/versions/{args.versions}"),
                "first_version_page": timed_get(client, f"/imagepipe/models/{MODEL}/versions/1"),
                "versions_page": timed_get(client, f"/imagepipe/models/{MODEL}/versions"),
                "history_page": timed_get(client, f"/imagepipe/models/{MODEL}/history"),
                "registry_list": timed_cli(Lake(lake_root).registry),
            }
            print(where, json.dumps(results[where]), flush=True)
    finally:
        server.stop()
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    document = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()},
                "date": datetime.now(timezone.utc).date().isoformat(), "commit": head,
                "command": " ".join([Path(sys.executable).name, *sys.argv]), "versions": args.versions, **results}
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
