"""A model's numbered, immutable versions: the sha256 of every file in a manifest, files read back only after their
sha256 is checked, and the Spark models saved into them.

    <root>/<model>/versions/<n>/manifest.json  sha256 and size of every file of the version; created when the version
                                               number is taken, and the record of what the version holds
    <root>/<model>/versions/<n>/model/...      Spark PipelineModel files
    <root>/<model>/versions/<n>/metadata.json  written after the model: seals it (a version without it is incomplete)
    <root>/<model>/versions/<n>/metrics.json, verdict.json, report.md, ...   written later by evaluation
    <root>/<model>/runs/<run>.json             which version a DAG run trained (retries reuse it)

Immutability: a file belongs to a version once the manifest records its sha256, and a recorded name is never
written again (a retry writing the same bytes changes nothing; other bytes are refused). Bytes at an unrecorded
name are the leftovers of an interrupted write and may be replaced. The manifest itself is updated by
compare-and-swap (imagepipe.storage's conditional put), so concurrent writers never lose each other's records. Model
files may be replaced only until metadata.json seals the version: a retried training replaces what an interrupted
one left. Reads check every file against its sha256 and refuse a tampered or half-written version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

from imagepipe import settings, storage
from imagepipe.errors import InputError
from imagepipe.gate import Verdict
from imagepipe.lake import run_key
from imagepipe.records import RunRecord

MANIFEST = "manifest.json"
METADATA = "metadata.json"
VERDICT = "verdict"
TYPED_DOCUMENTS = {VERDICT: Verdict}  # a version's documents read as a record class, by name
MODEL = "model/"
# A plain file name, or one folder deep (thumbnails/<sha256>.jpg); no segment can be `..` or hidden.
_FILE_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class RunVersion(RunRecord):
    """Which version a DAG run trained (runs/<run>.json): a retried training reuses it."""

    KIND: ClassVar[str] = "run's version"
    REMEDY: ClassVar[str] = "delete the file and re-run the run's training, which takes a new version"
    version: int
    run_id: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Versions:
    """The versions of one model in a registry rooted at a URI (s3://bucket/prefix or a local path)."""

    def __init__(self, root: str, model_name: str):
        self.model_name = model_name
        self._store = storage.open_store(storage.join(root, model_name))
        self.where = self._store.where

    def versions(self) -> list[int]:
        return sorted(int(name) for name in self._store.list("versions") if name.isdigit())

    def _run_path(self, run_id: str) -> str:
        return f"runs/{run_key(run_id)}.json"

    def version_for_run(self, run_id: str) -> int | None:
        path = self._run_path(run_id)
        document = self._store.read_json(path)
        return None if document is None else RunVersion.from_json(document, f"{self.where}/{path}").version

    def allocate_version(self, run_id: str) -> int:
        """The version number of this run's model: the one an earlier attempt of the run took, else the next free.

        A number is taken by creating its manifest (If-None-Match), so concurrent runs never share one."""
        existing = self.version_for_run(run_id)
        if existing is not None:
            return existing
        version = (self.versions() or [0])[-1] + 1
        while True:
            manifest = {"model_name": self.model_name, "version": version, "run_id": run_id, "created_at": now(),
                        "files": {}}
            try:
                self._store.write_json(self._path(version, MANIFEST), manifest, expect=None)
                break
            except storage.Conflict:
                version += 1
        try:
            self._store.write_json(self._run_path(run_id), RunVersion(version, run_id).to_json(), expect=None)
        except storage.Conflict:  # another attempt of the same run got there first: its version is the run's
            return self.version_for_run(run_id)
        return version

    def _path(self, version: int, name: str) -> str:
        return f"versions/{version}/{name}"

    def _manifest(self, version: int) -> storage.Stored:
        found = self._store.get(self._path(version, MANIFEST))
        if found is None:
            raise InputError(f"{self.model_name} has no version {version} in {self.where}{self._known_versions()}")
        return found

    def _known_versions(self) -> str:
        versions = self.versions()
        return f" (versions: {', '.join(map(str, versions))})" if versions else " (it has no versions yet)"

    def manifest(self, version: int) -> dict:
        """What the version holds: every file's sha256 and size, and the run that created it."""
        return json.loads(self._manifest(version).data)

    def _read_verified(self, version: int, name: str, entry: dict) -> bytes:
        found = self._store.get(self._path(version, name))
        if found is None:
            raise InputError(
                f"{self.model_name} version {version} is half-written: {name} is recorded but missing in {self.where}"
            )
        if _sha256(found.data) != entry["sha256"]:
            raise InputError(
                f"{self.model_name} version {version} is corrupted: {name} does not match its recorded sha256 "
                f"(changed or half-written since it was published); refusing to use it"
            )
        return found.data

    def _publish(self, version: int, files: dict[str, bytes], replace_model: bool = False) -> None:
        """Write files into the version and record their sha256s; recorded names are immutable (see module doc)."""
        entries = {name: {"sha256": _sha256(data), "size": len(data)} for name, data in files.items()}

        def check(recorded: dict) -> None:
            if replace_model and METADATA in recorded:
                raise InputError(
                    f"{self.model_name} version {version} is complete (its metadata is written) and immutable: its "
                    "model cannot be replaced; train a new version"
                )
            for name, entry in entries.items():
                if not replace_model and name in recorded and recorded[name]["sha256"] != entry["sha256"]:
                    raise InputError(
                        f"{self.model_name} version {version} already holds {name} with other content; versions are "
                        "immutable"
                    )

        manifest = self.manifest(version)
        check(manifest["files"])
        if replace_model:
            self._store.delete(self._path(version, MODEL))
        for name, data in files.items():
            if manifest["files"].get(name) != entries[name] or replace_model:
                self._store.put(self._path(version, name), data)
        while True:  # record by compare-and-swap: a concurrent writer's records are re-read, never overwritten
            found = self._manifest(version)
            manifest = json.loads(found.data)
            check(manifest["files"])
            kept = {name: entry for name, entry in manifest["files"].items()
                    if not (replace_model and name.startswith(MODEL))}
            updated = dict(manifest, files={**kept, **entries})
            if updated == manifest:
                return
            try:
                self._store.write_json(self._path(version, MANIFEST), updated, expect=found.tag)
                return
            except storage.Conflict:
                continue

    def write_file(self, version: int, name: str, source: str | Path | bytes) -> None:
        """Publish one write-once file (a report, a plot) into the version: bytes, or the path of a local file."""
        self.write_files(version, {name: source if isinstance(source, bytes) else Path(source).read_bytes()})

    def write_files(self, version: int, files: dict[str, bytes]) -> None:
        """Publish write-once files into the version, recorded in one manifest update (a report's thumbnails)."""
        for name in files:
            if not _FILE_NAME.match(name) or name == MANIFEST or name.startswith(MODEL):
                raise InputError(f"{name!r} cannot name a registry file: use a plain file name such as report.md, "
                                 "or one folder deep such as thumbnails/a.jpg (model/ is the saved model's)")
        if files:
            self._publish(version, files)

    def write_document(self, version: int, name: str, document: dict) -> None:
        self.write_file(version, f"{name}.json", storage.json_bytes(document))

    def read_file(self, version: int, name: str) -> bytes | None:
        """A file of the version after checking its sha256; None when no such version or file is recorded."""
        manifest = self._store.read_json(self._path(version, MANIFEST))
        entry = None if manifest is None else manifest["files"].get(name)
        return None if entry is None else self._read_verified(version, name, entry)

    def document(self, version: int, name: str) -> dict | None:
        data = self.read_file(version, f"{name}.json")
        return None if data is None else json.loads(data)

    def verdict(self, version: int) -> Verdict | None:
        """The gate's verdict on the version (evaluate_model's), or None before its evaluation."""
        return self._typed(version, VERDICT, self.document(version, VERDICT))

    def write_verdict(self, version: int, verdict: Verdict) -> None:
        self.write_document(version, VERDICT, verdict.to_json())

    def _typed(self, version: int, name: str, document: dict | None):
        """A document of the version as its record class, where it has one (the verdict)."""
        if document is None or name not in TYPED_DOCUMENTS:
            return document
        return TYPED_DOCUMENTS[name].from_json(document, f"{self.where}/{self._path(version, name)}.json")

    def documents(self, version: int, names: tuple[str, ...], manifest: dict | None = None) -> dict:
        """Several JSON documents of the version (the verdict as a Verdict), each checked against one read of its
        manifest (the given one, when the caller has it already): a page listing many versions pays one manifest
        read per version, not one per document. None for a document the version does not record."""
        files = (manifest or self.manifest(version))["files"]
        return {name: self._typed(version, name, json.loads(self._read_verified(version, f"{name}.json",
                                                                                files[f"{name}.json"])))
                if f"{name}.json" in files else None for name in names}

    def metadata(self, version: int) -> dict:
        metadata = self.document(version, "metadata")
        if metadata is None:
            raise InputError(f"{self.model_name} version {version} is missing or incomplete in {self.where}")
        return metadata

    def _verified_files(self, version: int):
        """(name, bytes) of every file of a complete version, each checked against its sha256."""
        files = self.manifest(version)["files"]
        if METADATA not in files:
            raise InputError(f"{self.model_name} version {version} is missing or incomplete in {self.where}")
        for name, entry in sorted(files.items()):
            yield name, self._read_verified(version, name, entry)

    def verify(self, version: int) -> None:
        """Check that the version is complete and every file matches its sha256 (no Spark needed)."""
        for _ in self._verified_files(version):
            pass

    # --- models -------------------------------------------------------------------------------------------------

    def save_model(self, version: int, model) -> None:
        """Save a Spark PipelineModel into the version (replacing what an interrupted save left, until the version's
        metadata is written), recording every file's sha256."""
        cache = settings.model_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".save-") as folder:
            model.write().overwrite().save(folder)
            files = {MODEL + path.relative_to(folder).as_posix(): path.read_bytes()
                     for path in sorted(Path(folder).rglob("*")) if path.is_file()}
        self._publish(version, files, replace_model=True)

    def load_model(self, version: int):
        """The version's PipelineModel, loaded from a local copy whose every file matched its recorded sha256."""
        from pyspark.ml import PipelineModel

        model_files = {name: entry for name, entry in self.manifest(version)["files"].items() if name.startswith(MODEL)}
        if not model_files:
            raise InputError(f"{self.model_name} version {version} has no saved model in {self.where}")
        parent = settings.model_cache_dir() / self.model_name
        parent.mkdir(parents=True, exist_ok=True)
        # Named by the checksums it holds: a folder already there holds the same verified files.
        target = parent / f"{version}-{_sha256(storage.json_bytes(model_files))[:16]}"
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{version}-"))
        try:
            for name, data in self._verified_files(version):  # every file is checked, the model's are kept
                if name.startswith(MODEL):
                    path = staging / name.removeprefix(MODEL)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
            with contextlib.suppress(OSError):  # target exists: placed by an earlier or concurrent load
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return PipelineModel.load(str(target))
