"""What one pipeline run did, read from the lake and the registry: run_outcome() for the Airflow UI's run tab and for
this command, which prints it.

    python -m imagepipe.summary [--dataset NAME] [--run-id RUN_ID] [--lake-root URI]

Without --run-id, the dataset's run that most recently recorded its window. --lake-root is a dataset's own lake
folder with its registry (the default dataset's when not given) and wins over --dataset's.
"""

from __future__ import annotations

import argparse
import sys

from imagepipe import datasets, storage
from imagepipe.errors import InputError
from imagepipe.features import describe_backbone
from imagepipe.gate import explain
from imagepipe.lake import Lake
from imagepipe.records import (
    CandidateRecord,
    FeaturesRecord,
    FinetuneRecord,
    IngestRecord,
    PromotionRecord,
    RetrainRecord,
    WindowRecord,
)
from imagepipe.registry import Registry, open_registry

SPLITS = ("train", "validation", "test")
# The command prints this many quarantined keys; the run tab shows them all.
PRINTED_KEYS = 5


def newest_run(lake: Lake) -> str:
    runs = storage.local_path(storage.join(lake.root, "runs"))
    records = sorted(runs.glob("*/window.json"), key=lambda path: path.stat().st_mtime) if runs.exists() else []
    if not records:
        raise InputError(f"no pipeline run has recorded anything in {lake.root}")
    return WindowRecord.from_json(storage.read_json(str(records[-1])), str(records[-1])).run_id


def split_rows(metadata: dict) -> dict[str, int]:
    """Rows of each split the version was made from (the model is fitted on the train split alone)."""
    per_split = metadata.get("rows") or {}
    return {split: sum(per_split.get(split, {}).values()) for split in SPLITS}


def run_outcome(lake: Lake, run_id: str, registry: Registry) -> dict:
    """Everything the run decided, from its records: window, ingest counts and quarantined keys, the fine-tuned
    weights, feature rows, whether training was due, the candidate (its split rows, test metrics, verdict), the
    promotion and the champion now.
    A step that has not run (or was skipped) is None."""
    def found(kind) -> dict | None:
        record = lake.find_record(run_id, kind)
        return None if record is None else record.to_json()

    window = lake.read_record(run_id, WindowRecord)
    ingest = lake.read_record(run_id, IngestRecord)
    outcome = {
        "run_id": run_id,
        "window": window.to_json(),
        "ingest": ingest.to_json(),
        "quarantined": ingest.quarantined,  # the keys the run's ingest quarantined, as its record lists them
        "quarantine_table": lake.quarantine.identifier,
        "finetune": found(FinetuneRecord),
        "features": found(FeaturesRecord),
        "retrain": found(RetrainRecord),
        "candidate": None,
        "promotion": found(PromotionRecord),
        "champion": registry.champion(),
    }
    record = lake.find_record(run_id, CandidateRecord)
    if record is not None:
        version = record.version
        metadata = registry.metadata(version)
        metrics = registry.document(version, "metrics")
        outcome["candidate"] = {
            "model_name": registry.model_name,
            "version": version,
            "rows": split_rows(metadata),
            "metrics": None if metrics is None else metrics["candidate"],
            "champion_metrics": None if metrics is None else metrics["champion"],
            "verdict": registry.verdict(version),
            "report": storage.join(registry.where, "versions", str(version), "report.html"),
        }
    return outcome


def promotion_line(outcome: dict) -> str | None:
    """What the promotion did, or why there was none; None before the candidate's verdict."""
    promotion, candidate = outcome["promotion"], outcome["candidate"]
    if promotion is not None:
        version = promotion["version"]
        if promotion.get("skipped"):
            return f"version {version} not promoted: {promotion['skipped']}"
        if not promotion["changed"]:
            return f"version {version} is champion (it already was)"
        previous = promotion.get("previous")
        return f"version {version} became champion (was {'none' if previous is None else f'version {previous}'})"
    if candidate is None or candidate["verdict"] is None:
        return None
    if candidate["verdict"].passed:
        return f"version {candidate['version']} passed its gate; promotion has not run yet"
    return f"version {candidate['version']} not promoted: its gate failed"


def summarize(outcome: dict) -> list[str]:
    window, ingest = outcome["window"], outcome["ingest"]
    rejected = ", ".join(f"{kind}={count}" for kind, count in ingest["rejected"].items()) or "none"
    lines = [
        f"run:              {outcome['run_id']}",
        f"window:           [{window['start']}, {window['end']})",
        f"images ingested:  {ingest['ingested']} new (listed {ingest['listed']}, duplicates {ingest['duplicates']}, "
        f"unlabeled {ingest['unlabeled']})",
        f"label conflicts:  {ingest['conflicts']}",
        f"images rejected:  {sum(ingest['rejected'].values())} ({rejected})",
    ]
    keys = outcome["quarantined"]
    if keys:
        lines.append(f"quarantined:      {len(keys)} objects (rejected or label conflicts) in "
                     f"{outcome['quarantine_table']}")
        lines += [f"                  {row['key']}: {row['reason']}" for row in keys[:PRINTED_KEYS]]
        if len(keys) > PRINTED_KEYS:
            lines.append(f"                  ... and {len(keys) - PRINTED_KEYS} more")
    finetune = outcome["finetune"]
    if finetune is not None:
        lines.append(f"fine-tuned:       {finetune['weights']} (validation accuracy "
                     f"{finetune['best_validation_accuracy']:.4f} after {finetune['epochs_run']} epochs"
                     f"{', reused' if finetune['reused'] else ''})")
    features = outcome["features"]
    if features is None:
        lines.append("skipped:          no new images in the window, so no features, training or evaluation")
    else:
        lines.append(f"feature rows:     {features['rows']} computed this run in {features['fingerprint']}")
        lines.append(f"backbone:         {describe_backbone(features.get('backbone'))}")
    retrain = outcome["retrain"]
    if retrain is not None:
        lines.append(f"training:         {'due' if retrain['due'] else 'skipped'}: {retrain['reason']}")
    candidate = outcome["candidate"]
    if candidate is not None:
        rows = candidate["rows"]
        lines.append(f"candidate:        {candidate['model_name']} version {candidate['version']}, trained on "
                     f"{rows['train']} rows (validation {rows['validation']}, test {rows['test']})")
        metrics = candidate["metrics"]
        if metrics is not None:
            lines.append(f"test accuracy:    {metrics['accuracy']:.4f} (macro-F1 {metrics['macro_f1']:.4f}) on "
                         f"{metrics['rows']} held-out images")
            lines.append(f"report:           {candidate['report']}")
        if candidate["verdict"] is not None:
            lines.append(f"gate verdict:     {candidate['verdict'].outcome}")
            lines.extend(f"                  {line}" for line in explain(candidate["verdict"]))
    promotion = promotion_line(outcome)
    if promotion is not None:
        lines.append(f"promotion:        {promotion}")
    champion = None if outcome["champion"] is None else outcome["champion"].version
    return lines + [f"champion:         {'none' if champion is None else f'version {champion}'}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imagepipe.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-id")
    parser.add_argument("--dataset", default=datasets.DEFAULT, help="default: %(default)s")
    parser.add_argument("--lake-root")
    parser.add_argument("--model-name")
    args = parser.parse_args(argv)
    try:
        dataset = datasets.named(args.dataset)
        lake = Lake(args.lake_root or dataset.lake_root())
        args.model_name = args.model_name or dataset.model_name
        # The registry is the deployment's, shared by the datasets (unless --lake-root names another lake).
        registry = open_registry(args.model_name, lake_root=args.lake_root)
        outcome = run_outcome(lake, args.run_id or newest_run(lake), registry)
        print("\n".join(summarize(outcome)))
    except InputError as error:
        sys.exit(f"summary: error: {error}")


if __name__ == "__main__":
    main()
