"""What each page shows, read from the registry and the lake's run records: plain dicts for the templates. A version
whose files fail their sha256 check is shown with that problem, not hidden; a missing model, version or run is a
LookupError for the app to answer 404."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

from imagepipe import charts, report, storage
from imagepipe.errors import InputError, MissingRecordError
from imagepipe.lake import Lake, registry_uri
from imagepipe.registry import ChampionEntry, Registry
from imagepipe.summary import promotion_line, run_outcome


class NotFound(LookupError):
    """No such model, version, file or run record; the message says which."""


def registry_root() -> str:
    return registry_uri()


def model_names(root: str) -> list[str]:
    """The models registered under the root: its folders that hold versions."""
    store = storage.open_store(root)
    return [name for name in store.list() if store.exists(f"{name}/versions")]


def open_model(root: str, model_name: str) -> Registry:
    """The model's registry; only a name the registry lists, so a request never names a path of its own."""
    if model_name not in model_names(root):
        raise NotFound(f"the registry at {root} has no model named {model_name!r}")
    return Registry(root, model_name)


DRIFT_RUNS_SHOWN = 20  # the Models page's chart and table: a model's newest scoring runs


def drift_history(lake: Lake, model_name: str) -> list[dict]:
    """The model's newest scoring runs' drift rows (the lake's drift table), oldest first; none before the first run
    that judged drift."""
    from pyiceberg.exceptions import NoSuchTableError

    from imagepipe import tables

    try:
        rows = tables.read_arrow(lake.drift(model_name)).to_pylist()
    except NoSuchTableError:
        return []
    return sorted(rows, key=lambda row: (row["scored_at"], row["run_id"]))[-DRIFT_RUNS_SHOWN:]


# What a version's row and page show, in this order.
REPORTED_DOCUMENTS = ("metadata", "metrics", "verdict")


def _version_row(registry: Registry, version: int, champion: int | None) -> dict:
    row = {"version": version, "champion": version == champion, "problem": None}
    try:
        manifest = registry.manifest(version)
        metadata, metrics, verdict = registry.documents(version, REPORTED_DOCUMENTS, manifest).values()
    except InputError as error:  # a corrupted or half-written version is listed, with what is wrong with it
        return {**row, "problem": str(error)}
    candidate = (metrics or {}).get("candidate") or {}
    model = (metadata or {}).get("model") or {}
    return {
        **row,
        "complete": metadata is not None,
        "verdict": None if verdict is None else verdict.outcome,
        "failed_checks": [] if verdict is None else verdict.failed_checks,
        "accuracy": candidate.get("accuracy"),
        "macro_f1": candidate.get("macro_f1"),
        "fingerprint": (metadata or {}).get("fingerprint"),
        "classifier": model.get("classifier"),
        "created_at": manifest.get("created_at"),
        "run_id": manifest.get("run_id"),
        "dag_id": (metadata or {}).get("dag_id"),
    }


# Each read of a page is one or a few registry objects (some 20 ms each on object storage), so a page reads only
# the rows it shows, several at a time (storage.read_each): the Models page a model's newest versions and champion
# changes, the versions and history pages one page of them. History entries are write-once, so the app keeps those
# it has read.
VERSIONS_SHOWN = 20
VERSIONS_PER_PAGE = 25
HISTORY_SHOWN = 20
HISTORY_PER_PAGE = 50
_history_entries: dict[tuple[str, str, int], ChampionEntry] = {}
_history_lock = threading.Lock()


def entry_reader(registry: Registry):
    """Reads the model's history entry `sequence`, each from the registry once in the app's life."""
    def read_entry(sequence: int) -> ChampionEntry:
        key = (registry.where, registry.model_name, sequence)
        with _history_lock:
            known = _history_entries.get(key)
        if known is None:
            known = registry.history_entry(sequence)
            with _history_lock:
                _history_entries[key] = known
        return known

    return read_entry


def version_rows(registry: Registry, versions: list[int], champion: int | None) -> list[dict]:
    return storage.read_each(lambda version: _version_row(registry, version, champion), versions)


def model_overview(registry: Registry) -> dict:
    """The champion and the history entry that made it, the newest evaluated version when its gate failed, the
    newest VERSIONS_SHOWN versions and HISTORY_SHOWN champion changes, newest first (and how many there are), and
    the versions a rollback may name (former champions)."""
    champion = registry.champion()
    champion_version = None if champion is None else champion.version
    read_entry = entry_reader(registry)
    former = sorted(set(registry.made_champion(champion, read_entry)) - {champion_version}, reverse=True)
    every = registry.versions()
    versions = version_rows(registry, every[::-1][:VERSIONS_SHOWN], champion_version)
    evaluated = [row for row in versions if row.get("verdict")]
    # The newest evaluated version, when its gate kept it from becoming champion: what the last run decided.
    newest = evaluated[0] if evaluated else None
    refused = newest if newest and newest["verdict"] == "FAILED" and not newest["champion"] else None
    return {
        "name": registry.model_name,
        "where": registry.where,
        "champion": champion,
        "last_refused": refused,
        "versions": versions,
        "version_count": len(every),
        "history": registry.history_up_to(champion, HISTORY_SHOWN, read_entry)[::-1],
        "history_count": 0 if champion is None else champion.sequence,
        "former_champions": former,
    }


def _page(count: int, page: int, per_page: int, what: str, model_name: str) -> tuple[int, slice]:
    """How many pages `count` items make, and page `page`'s (from 1) slice of them newest first."""
    pages = max(1, -(-count // per_page))
    if not 1 <= page <= pages:
        raise NotFound(f"{model_name} has {pages} page(s) of {what}, not a page {page}")
    return pages, slice((page - 1) * per_page, page * per_page)


def version_list(registry: Registry, page: int) -> dict:
    """Page `page` (from 1) of the model's versions, newest first, VERSIONS_PER_PAGE to a page."""
    every = registry.versions()[::-1]
    pages, shown = _page(len(every), page, VERSIONS_PER_PAGE, "versions", registry.model_name)
    return {"name": registry.model_name, "where": registry.where, "page": page, "pages": pages,
            "version_count": len(every), "versions": version_rows(registry, every[shown], registry.champion_version())}


def history_list(registry: Registry, page: int) -> dict:
    """Page `page` (from 1) of the model's champion changes, newest first, HISTORY_PER_PAGE to a page."""
    champion = registry.champion()
    count = 0 if champion is None else champion.sequence
    pages, shown = _page(count, page, HISTORY_PER_PAGE, "champion changes", registry.model_name)
    entries = [] if champion is None else registry.entries(champion, range(count, 0, -1)[shown],
                                                           entry_reader(registry))
    return {"name": registry.model_name, "where": registry.where, "page": page, "pages": pages,
            "history_count": count, "history": entries}


def version_detail(registry: Registry, version: int) -> dict:
    """The version's report tables (the evaluation's own sections), pictures, gallery of test images, metadata, every
    file with its sha256, and the history entries that made it champion."""
    if version not in registry.versions():
        raise NotFound(f"{registry.model_name} has no version {version} in {registry.where}")
    manifest = registry.manifest(version)
    files = manifest["files"]
    detail = {"model_name": registry.model_name, "version": version, "problem": None, "sections": [], "notes": [],
              "verdict": None, "metadata": None, "metadata_json": None, "run_id": manifest.get("run_id"),
              "created_at": manifest.get("created_at"),
              "files": [{"name": name, **entry} for name, entry in sorted(files.items())],
              "pictures": [(title, name) for name, title in charts.TITLES.items() if name in files],
              "gallery": [], "open_rows": report.OPEN_ROWS,
              "report": "report.html" in files,
              "champion_entries": registry.champion_entries(version, entry_reader(registry))}
    try:
        metadata, metrics, verdict = registry.documents(version, REPORTED_DOCUMENTS, manifest).values()
    except InputError as error:
        return {**detail, "problem": str(error)}
    detail.update(metadata=metadata, verdict=verdict,
                  metadata_json=None if metadata is None else json.dumps(metadata, indent=2, sort_keys=True,
                                                                         ensure_ascii=False))
    if metadata is not None and metrics is not None and verdict is not None:
        detail["sections"] = report.sections(metadata, metrics["candidate"], metrics["champion"], verdict)
        detail["notes"] = verdict.notes
        detail["gallery"] = report.gallery_sections(metrics.get("gallery"))
    return detail


def version_file(registry: Registry, version: int, name: str) -> bytes:
    """A file the version's manifest lists, checked against its sha256; any other name is NotFound."""
    if version not in registry.versions() or name not in registry.manifest(version)["files"]:
        raise NotFound(f"{registry.model_name} version {version} has no file {name!r}")
    return registry.read_file(version, name)


def run_detail(lake: Lake, run_id: str, model_name: str) -> dict:
    """The run's outcome (imagepipe.summary's, the same the command prints), with the quarantined keys grouped by
    their reason's kind and the promotion said in words. `lake` is the run's dataset's; the registry is the
    deployment's."""
    try:
        outcome = run_outcome(lake, run_id, Registry(registry_root(), model_name))
    except MissingRecordError as error:
        raise NotFound(str(error)) from None
    by_kind = defaultdict(list)
    for row in outcome["quarantined"]:
        by_kind[row["reason"].split(":", 1)[0]].append(row)
    return {**outcome, "model_name": model_name, "quarantined_by_kind": dict(sorted(by_kind.items())),
            "promotion_text": promotion_line(outcome)}
