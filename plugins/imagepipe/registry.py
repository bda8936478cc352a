"""Model registry under the lake: numbered immutable versions, a champion pointer moved by compare-and-swap, and an
append-only promotion history.

    <registry>/<model>/versions/<n>/model/          Spark PipelineModel
    <registry>/<model>/versions/<n>/metadata.json   written last: a version without it is incomplete
    <registry>/<model>/versions/<n>/metrics.json, verdict.json   the evaluation of the version
    <registry>/<model>/runs/<run>.json              which version a DAG run trained (retries reuse it)
    <registry>/<model>/champion.json                the pointer consumers load by
    <registry>/<model>/history.jsonl                one line per champion change

This registry lives on a local (or mounted) path, where a file lock and atomic renames make promotion a
compare-and-swap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from datetime import datetime, timezone
from pathlib import Path

from imagepipe import storage
from imagepipe.errors import InputError
from imagepipe.lake import run_key


class ChampionMovedError(InputError):
    """The champion changed between evaluation and promotion; nothing was changed."""


class Registry:
    def __init__(self, root: str, model_name: str):
        if storage.is_s3(root):
            raise InputError(f"registry root {root} is on object storage; this registry needs a local or mounted path")
        self.model_name = model_name
        self.base = storage.local_path(root) / model_name

    @contextlib.contextmanager
    def _locked(self):
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def version_dir(self, version: int) -> Path:
        return self.base / "versions" / str(version)

    def model_uri(self, version: int) -> str:
        return str(self.version_dir(version) / "model")

    def versions(self) -> list[int]:
        folder = self.base / "versions"
        return sorted(int(path.name) for path in folder.iterdir() if path.name.isdigit()) if folder.exists() else []

    def version_for_run(self, run_id: str) -> int | None:
        record = storage.read_json(str(self.base / "runs" / f"{run_key(run_id)}.json"))
        return None if record is None else record["version"]

    def allocate_version(self, run_id: str) -> int:
        """The version number of this run's model: the one an earlier attempt of the run took, else the next free."""
        with self._locked():
            existing = self.version_for_run(run_id)
            if existing is not None:
                return existing
            version = (self.versions() or [0])[-1] + 1
            self.version_dir(version).mkdir(parents=True)
            storage.write_json(str(self.base / "runs" / f"{run_key(run_id)}.json"), {"version": version, "run_id": run_id})
            return version

    def document(self, version: int, name: str) -> dict | None:
        return storage.read_json(str(self.version_dir(version) / f"{name}.json"))

    def write_document(self, version: int, name: str, document: dict) -> None:
        storage.write_json(str(self.version_dir(version) / f"{name}.json"), document)

    def metadata(self, version: int) -> dict:
        metadata = self.document(version, "metadata")
        if metadata is None:
            raise InputError(f"{self.model_name} version {version} is missing or incomplete in {self.base}")
        return metadata

    def champion(self) -> dict | None:
        return storage.read_json(str(self.base / "champion.json"))

    def champion_version(self) -> int | None:
        champion = self.champion()
        return None if champion is None else champion["version"]

    def history(self) -> list[dict]:
        path = self.base / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def promote(self, version: int, expected_champion: int | None, run_id: str, reason: str) -> bool:
        """Make `version` the champion if the champion is still `expected_champion`.

        Returns False when `version` already is the champion (a retried promotion changes nothing). Raises
        ChampionMovedError, changing nothing, when another promotion moved the champion in between.
        """
        self.metadata(version)
        with self._locked():
            current = self.champion_version()
            if current == version:
                return False
            if current != expected_champion:
                raise ChampionMovedError(
                    f"champion of {self.model_name} moved from version {expected_champion} to {current} after version "
                    f"{version} was evaluated against it; nothing was promoted: re-run the evaluation"
                )
            now = datetime.now(timezone.utc).isoformat()
            storage.write_json(str(self.base / "champion.json"), {"version": version, "promoted_at": now, "run_id": run_id})
            entry = {"from": current, "to": version, "at": now, "run_id": run_id, "reason": reason}
            with open(self.base / "history.jsonl", "a") as history:
                history.write(json.dumps(entry, sort_keys=True) + "\n")
            return True
