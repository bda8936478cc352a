"""Print what one pipeline run did, read from the lake and the registry.

    python -m imagepipe.summary [--run-id RUN_ID] [--lake-root URI]

Without --run-id, the run that most recently recorded its window.
"""

from __future__ import annotations

import argparse
import sys

from imagepipe import settings, storage
from imagepipe.errors import InputError
from imagepipe.gate import explain
from imagepipe.lake import Lake
from imagepipe.registry import Registry, open_registry


def newest_run(lake: Lake) -> str:
    runs = storage.local_path(storage.join(lake.root, "runs"))
    records = sorted(runs.glob("*/window.json"), key=lambda path: path.stat().st_mtime) if runs.exists() else []
    if not records:
        raise InputError(f"no pipeline run has recorded anything in {lake.root}")
    return storage.read_json(str(records[-1]))["run_id"]


def summarize(lake: Lake, run_id: str, model_name: str) -> list[str]:
    window = lake.read_run(run_id, "window")
    ingest = lake.read_run(run_id, "ingest")
    rejected = ", ".join(f"{kind}={count}" for kind, count in ingest["rejected"].items()) or "none"
    lines = [
        f"run:              {run_id}",
        f"window:           [{window['start']}, {window['end']})",
        f"images ingested:  {ingest['ingested']} new (listed {ingest['listed']}, duplicates {ingest['duplicates']}, "
        f"unlabeled {ingest['unlabeled']})",
        f"images rejected:  {sum(ingest['rejected'].values())} ({rejected})",
    ]
    registry = open_registry(model_name, lake_root=lake.root)
    features = storage.read_json(lake.run_document(run_id, "features"))
    if features is None:
        return lines + ["skipped:          no new images in the window, so no features, training or evaluation",
                        _champion_line(registry)]
    lines.append(f"feature rows:     {features['rows']} computed this run in {features['fingerprint']}")
    version = lake.read_run(run_id, "candidate")["version"]
    metadata = registry.metadata(version)
    metrics = registry.document(version, "metrics")
    verdict = registry.document(version, "verdict")
    trained_on = sum(sum(per_class.values()) for per_class in metadata["rows"].values())
    lines.append(f"candidate:        {model_name} version {version}, trained on {trained_on} feature rows")
    if metrics is not None:
        candidate = metrics["candidate"]
        lines.append(f"test accuracy:    {candidate['accuracy']:.4f} (macro-F1 {candidate['macro_f1']:.4f}) on "
                     f"{candidate['rows']} held-out images")
        lines.append(f"report:           {storage.join(registry.where, 'versions', str(version), 'report.html')}")
    if verdict is not None:
        lines.append(f"gate verdict:     {'PASSED' if verdict['passed'] else 'FAILED'}")
        lines.extend(f"                  {line}" for line in explain(verdict))
    return lines + [_champion_line(registry)]


def _champion_line(registry: Registry) -> str:
    champion = registry.champion_version()
    return f"champion:         {'none' if champion is None else f'version {champion}'}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imagepipe.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-id")
    parser.add_argument("--lake-root", default=settings.lake_root())
    parser.add_argument("--model-name", default=settings.DEFAULT_MODEL_NAME)
    args = parser.parse_args(argv)
    lake = Lake(args.lake_root)
    try:
        print("\n".join(summarize(lake, args.run_id or newest_run(lake), args.model_name)))
    except InputError as error:
        sys.exit(f"summary: error: {error}")


if __name__ == "__main__":
    main()
