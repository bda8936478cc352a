"""Read a model registry from the shell (its versions, one version's files, the champion and its history) and roll
the champion back.

    python -m imagepipe.registry [--registry-uri URI] [--model-name NAME] [--json]
        list | show VERSION | champion | history | rollback [--to VERSION] --reason TEXT
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from imagepipe import settings, storage
from imagepipe.cli import POSITIVE_INT, JobArgumentParser
from imagepipe.errors import REFUSED, InputError
from imagepipe.registry.champion import ChampionEntry, Registry, open_registry
from imagepipe.registry.versions import METADATA

HISTORY_COLUMNS = ["sequence", "at", "kind", "from", "to", "by", "verdict", "reason"]


def _table(rows: list[dict], columns: list[str]) -> str:
    cells = [[("-" if row.get(column) is None else str(row[column])) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
                     for line in [columns, *cells])


def _version_row(registry: Registry, version: int, champion: int | None) -> dict:
    manifest = registry.manifest(version)
    files = manifest["files"]
    verdict, metrics = registry.documents(version, ("verdict", "metrics"), manifest).values()
    accuracy = ((metrics or {}).get("candidate") or {}).get("accuracy")
    return {
        "version": version,
        "champion": "*" if version == champion else "",
        "complete": METADATA in files,
        "verdict": None if verdict is None else verdict.outcome,
        "accuracy": None if accuracy is None else f"{accuracy:.4f}",
        "files": len(files),
        "run_id": manifest.get("run_id"),
        "created_at": manifest.get("created_at"),
    }


def _verdict_summary(passed: bool, failed_checks: list[str]) -> str:
    return "PASSED" if passed else f"FAILED ({', '.join(failed_checks)})"


def _history_row(entry: ChampionEntry) -> dict:
    verdict = entry.verdict  # what the version's verdict was when the entry was written
    return {**entry.to_json(), "by": entry.user or entry.run_id,
            "verdict": None if verdict is None else _verdict_summary(verdict["passed"], verdict["failed_checks"])}


def _snapshot_lines(registry: Registry, version: int) -> list[str]:
    """The lake snapshot of each table the version's training and its evaluation read (its lineage)."""
    read = [("trained", (registry.document(version, "metadata") or {}).get("snapshots") or {}),
            ("evaluated", (registry.document(version, "metrics") or {}).get("snapshots") or {})]
    return [f"{step + ':':<10} {table} snapshot {snapshot}"
            for step, snapshots in read for table, snapshot in sorted(snapshots.items())]


def _parser() -> argparse.ArgumentParser:
    parser = JobArgumentParser(prog="python -m imagepipe.registry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry-uri", default=None,
                        help="registry root, s3://bucket/prefix or a path (default: $IMAGEPIPE_REGISTRY_URI, else "
                        "<lake root>/registry)")
    parser.add_argument("--model-name", default=settings.DEFAULT_MODEL_NAME, help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=JobArgumentParser)
    commands.add_parser("list", help="every version, its verdict and whether it is the champion")
    show = commands.add_parser("show", help="one version: metadata, verdict and every file with its sha256")
    show.add_argument("version", type=POSITIVE_INT)
    commands.add_parser("champion", help="the current champion and how it became champion")
    commands.add_parser("history", help="every champion change, oldest first")
    rollback = commands.add_parser("rollback", help="make an older version the champion again (compare-and-swap)")
    rollback.add_argument("--to", type=POSITIVE_INT, help="version to roll back to (default: the previous champion)")
    rollback.add_argument("--reason", required=True, help="why, recorded in the history")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    registry = open_registry(args.model_name, args.registry_uri)
    try:
        if args.command == "list":
            champion = registry.champion_version()
            result = storage.read_each(lambda version: _version_row(registry, version, champion),
                                       registry.versions())
            columns = ["version", "champion", "complete", "verdict", "accuracy", "files", "run_id", "created_at"]
            text = _table(result, columns) if result else f"{args.model_name} has no versions in {registry.where}"
        elif args.command == "show":
            manifest = registry.manifest(args.version)
            verdict = registry.verdict(args.version)
            result = {"version": args.version, "champion": registry.champion_version() == args.version,
                      "manifest": manifest, "metadata": registry.document(args.version, "metadata"),
                      "verdict": None if verdict is None else verdict.to_json()}
            lines = [f"{args.model_name} version {args.version}{' (champion)' if result['champion'] else ''}",
                     f"run:      {manifest.get('run_id')}", f"created:  {manifest.get('created_at')}",
                     f"verdict:  {'-' if verdict is None else _verdict_summary(verdict.passed, verdict.failed_checks)}"]
            files = [{"file": name, **entry} for name, entry in sorted(manifest["files"].items())]
            text = "\n".join(lines + _snapshot_lines(registry, args.version)
                             + ["", _table(files, ["file", "size", "sha256"])])
        elif args.command == "champion":
            champion = registry.champion()
            result = None if champion is None else champion.to_json()
            text = (f"{args.model_name} has no champion" if champion is None
                    else _table([_history_row(champion)], ["version", *HISTORY_COLUMNS]))
        elif args.command == "history":
            history = registry.history()
            result = [entry.to_json() for entry in history]
            text = (_table([_history_row(entry) for entry in history], HISTORY_COLUMNS) if history
                    else f"{args.model_name} has no promotion history")
        else:
            entry = registry.rollback(args.reason, to=args.to, user=getpass.getuser())
            result = entry.to_json()
            text = (f"champion of {args.model_name} rolled back from version {entry.from_version} to "
                    f"{entry.version}")
    except InputError as error:
        print(f"registry: error: {error}", file=sys.stderr)
        sys.exit(REFUSED)
    print(json.dumps(result, indent=2, sort_keys=True, default=str) if args.json else text)
