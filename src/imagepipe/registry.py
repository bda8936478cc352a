"""Model registry rooted at a URI (s3://bucket/prefix through boto3, or a local path): numbered immutable versions
with the sha256 of every file, a champion pointer moved by compare-and-swap, and an append-only promotion history.

    <root>/<model>/versions/<n>/manifest.json  sha256 and size of every file of the version; created when the version
                                               number is taken, and the record of what the version holds
    <root>/<model>/versions/<n>/model/...      Spark PipelineModel files
    <root>/<model>/versions/<n>/metadata.json  written after the model: seals it (a version without it is incomplete)
    <root>/<model>/versions/<n>/metrics.json, verdict.json, report.md, ...   written later by evaluation
    <root>/<model>/runs/<run>.json             which version a DAG run trained (retries reuse it)
    <root>/<model>/champion.json               the pointer consumers load by: the history entry that made the champion
    <root>/<model>/history/<sequence>.json     one entry per champion change, numbered from 1

Both backends offer the same conditional write, so the logic above them is one: on S3 a put with If-None-Match: *
(the key must not exist) or If-Match: <ETag>; on a local path an atomic rename made under a file lock after comparing
the file's sha256.

Immutability: a file belongs to a version once the manifest records its sha256, and a recorded name is never
written again (a retry writing the same bytes changes nothing; other bytes are refused). Bytes at an unrecorded
name are the leftovers of an interrupted write and may be replaced. The manifest itself is updated by
compare-and-swap, so concurrent writers never lose each other's records. Model files may be replaced only until
metadata.json seals the version: a retried training replaces what an interrupted one left. Reads check every file
against its sha256 and refuse a tampered or half-written version.

History: S3 has no append, and a separate history write after the pointer's could be lost to a crash, or written by
a loser of a race. So the pointer is the one commit point: champion.json *is* the newest history entry, with its
sequence number, written by compare-and-swap; only the winner of a race has an entry. Each entry is then copied,
write-once (If-None-Match), to history/<sequence>.json; a copy lost to a crash just after the swap is rewritten
from the pointer by the next promotion, and until then history() takes the newest entry from the pointer.

    python -m imagepipe.registry [--registry-uri URI] [--model-name NAME] [--json]
        list | show VERSION | champion | history | rollback [--to VERSION] --reason TEXT
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from imagepipe import settings, storage
from imagepipe.errors import InputError
from imagepipe.lake import run_key

KINDS = ("promotion", "forced", "rollback")
MANIFEST = "manifest.json"
METADATA = "metadata.json"
MODEL = "model/"
_ANY = object()  # put() without a condition
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ChampionMovedError(InputError):
    """The champion changed between evaluation and promotion; nothing was changed."""


class _Conflict(Exception):
    """A conditional write found the key in another state than it expected."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(document) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class _LocalStore:
    """Keys are paths under a folder; the tag of a file is its sha256."""

    def __init__(self, base: Path):
        self.base = base
        self.where = str(base)

    @contextlib.contextmanager
    def _locked(self):
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def get(self, key: str) -> tuple[bytes, str] | None:
        path = self.base / key
        if not path.is_file():
            return None
        data = path.read_bytes()
        return data, _sha256(data)

    def put(self, key: str, data: bytes, expect=_ANY) -> None:
        """Write key; expect None: only if it does not exist; expect a tag: only if it still has that tag."""
        path = self.base / key
        with self._locked():
            if expect is not _ANY:
                current = self.get(key)
                if (current is None) != (expect is None) or (current is not None and current[1] != expect):
                    raise _Conflict(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, prefix=f".{path.name}.") as handle:
                handle.write(data)
            os.replace(handle.name, path)

    def children(self, key: str) -> list[str]:
        folder = self.base / key
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []

    def delete_tree(self, key: str) -> None:
        shutil.rmtree(self.base / key, ignore_errors=True)


class _S3Store:
    """Keys are object keys under a prefix; the tag of an object is its ETag."""

    CONFLICTS = ("PreconditionFailed", "ConditionalRequestConflict")

    def __init__(self, uri: str):
        from imagepipe.object_store import parse_s3_uri, s3_client

        self.bucket, prefix = parse_s3_uri(uri)
        self.prefix = prefix.strip("/")
        self.client = s3_client()
        self.where = f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def _errors(self, action: str, key: str):
        from imagepipe.object_store import s3_errors

        return s3_errors(f"{action} s3://{self.bucket}/{self._key(key)}")

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._errors("read", key):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                return None
            return response["Body"].read(), response["ETag"]

    def put(self, key: str, data: bytes, expect=_ANY) -> None:
        """Write key; expect None: only if it does not exist (If-None-Match); a tag: only if it still has it (If-Match)."""
        from botocore.exceptions import ClientError

        condition = {} if expect is _ANY else {"IfNoneMatch": "*"} if expect is None else {"IfMatch": expect}
        with self._errors("write", key):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in self.CONFLICTS:
                    raise _Conflict(key) from None
                raise

    def _pages(self, key: str, **options):
        with self._errors("list", key):
            yield from self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(key).rstrip("/") + "/", **options
            )

    def children(self, key: str) -> list[str]:
        names = set()
        for page in self._pages(key, Delimiter="/"):
            names.update(item["Prefix"].rstrip("/").rsplit("/", 1)[-1] for item in page.get("CommonPrefixes", []))
            names.update(item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", []))
        return sorted(names)

    def delete_tree(self, key: str) -> None:
        for page in self._pages(key):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                with self._errors("delete under", key):
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})


class Registry:
    def __init__(self, root: str, model_name: str):
        self.model_name = model_name
        location = storage.join(root, model_name)
        self._store = _S3Store(location) if storage.is_s3(root) else _LocalStore(storage.local_path(location))
        self.where = self._store.where

    # --- versions -----------------------------------------------------------------------------------------------

    def versions(self) -> list[int]:
        return sorted(int(name) for name in self._store.children("versions") if name.isdigit())

    def version_for_run(self, run_id: str) -> int | None:
        record = self._store.get(f"runs/{run_key(run_id)}.json")
        return None if record is None else json.loads(record[0])["version"]

    def allocate_version(self, run_id: str) -> int:
        """The version number of this run's model: the one an earlier attempt of the run took, else the next free.

        A number is taken by creating its manifest (If-None-Match), so concurrent runs never share one."""
        existing = self.version_for_run(run_id)
        if existing is not None:
            return existing
        version = (self.versions() or [0])[-1] + 1
        while True:
            manifest = {"model_name": self.model_name, "version": version, "run_id": run_id, "created_at": _now(),
                        "files": {}}
            try:
                self._store.put(self._path(version, MANIFEST), _json_bytes(manifest), expect=None)
                break
            except _Conflict:
                version += 1
        try:
            self._store.put(f"runs/{run_key(run_id)}.json", _json_bytes({"version": version, "run_id": run_id}), expect=None)
        except _Conflict:  # another attempt of the same run got there first: its version is the run's
            return self.version_for_run(run_id)
        return version

    def _path(self, version: int, name: str) -> str:
        return f"versions/{version}/{name}"

    def _manifest(self, version: int) -> tuple[dict, str]:
        found = self._store.get(self._path(version, MANIFEST))
        if found is None:
            raise InputError(f"{self.model_name} has no version {version} in {self.where}{self._known_versions()}")
        return json.loads(found[0]), found[1]

    def _known_versions(self) -> str:
        versions = self.versions()
        return f" (versions: {', '.join(map(str, versions))})" if versions else " (it has no versions yet)"

    def manifest(self, version: int) -> dict:
        """What the version holds: every file's sha256 and size, and the run that created it."""
        return self._manifest(version)[0]

    def _read_verified(self, version: int, name: str, entry: dict) -> bytes:
        found = self._store.get(self._path(version, name))
        if found is None:
            raise InputError(
                f"{self.model_name} version {version} is half-written: {name} is recorded but missing in {self.where}"
            )
        if _sha256(found[0]) != entry["sha256"]:
            raise InputError(
                f"{self.model_name} version {version} is corrupted: {name} does not match its recorded sha256 "
                f"(changed or half-written since it was published); refusing to use it"
            )
        return found[0]

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

        manifest, _ = self._manifest(version)
        check(manifest["files"])
        if replace_model:
            self._store.delete_tree(self._path(version, MODEL))
        for name, data in files.items():
            if manifest["files"].get(name) != entries[name] or replace_model:
                self._store.put(self._path(version, name), data)
        while True:  # record by compare-and-swap: a concurrent writer's records are re-read, never overwritten
            manifest, tag = self._manifest(version)
            check(manifest["files"])
            kept = {name: entry for name, entry in manifest["files"].items()
                    if not (replace_model and name.startswith(MODEL))}
            updated = dict(manifest, files={**kept, **entries})
            if updated == manifest:
                return
            try:
                self._store.put(self._path(version, MANIFEST), _json_bytes(updated), expect=tag)
                return
            except _Conflict:
                continue

    def write_file(self, version: int, name: str, source: str | Path | bytes) -> None:
        """Publish one write-once file (a report, a plot) into the version: bytes, or the path of a local file."""
        if not _FILE_NAME.match(name) or name == MANIFEST:
            raise InputError(f"{name!r} cannot name a registry file: use a plain file name such as report.md")
        self._publish(version, {name: source if isinstance(source, bytes) else Path(source).read_bytes()})

    def write_document(self, version: int, name: str, document: dict) -> None:
        self.write_file(version, f"{name}.json", _json_bytes(document))

    def read_file(self, version: int, name: str) -> bytes | None:
        """A file of the version after checking its sha256; None when no such version or file is recorded."""
        found = self._store.get(self._path(version, MANIFEST))
        entry = None if found is None else json.loads(found[0])["files"].get(name)
        return None if entry is None else self._read_verified(version, name, entry)

    def document(self, version: int, name: str) -> dict | None:
        data = self.read_file(version, f"{name}.json")
        return None if data is None else json.loads(data)

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
        target = parent / f"{version}-{_sha256(_json_bytes(model_files))[:16]}"
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

    # --- champion and history -----------------------------------------------------------------------------------

    def champion(self) -> dict | None:
        """The newest history entry (with `version`, the champion's number), or None before the first promotion."""
        found = self._store.get("champion.json")
        return None if found is None else json.loads(found[0])

    def champion_version(self) -> int | None:
        champion = self.champion()
        return None if champion is None else champion["version"]

    def history(self) -> list[dict]:
        """Every champion change, oldest first."""
        pointer = self.champion()
        if pointer is None:
            return []
        entries = []
        for sequence in range(1, pointer["sequence"]):
            found = self._store.get(f"history/{sequence}.json")
            if found is None:
                raise InputError(f"history entry {sequence} of {self.model_name} is missing from {self.where}")
            entries.append(json.loads(found[0]))
        return [*entries, pointer]

    def _write_history(self, entry_bytes: bytes, sequence: int) -> None:
        with contextlib.suppress(_Conflict):  # already there: entries are write-once and identical
            self._store.put(f"history/{sequence}.json", entry_bytes, expect=None)

    def promote(
        self,
        version: int,
        expected_champion: int | None,
        run_id: str | None,
        reason: str,
        *,
        kind: str = "promotion",
        user: str | None = None,
    ) -> bool:
        """Make `version` the champion if the champion is still `expected_champion` (compare-and-swap).

        Returns False when `version` already is the champion (a retried promotion changes nothing). Raises
        ChampionMovedError, changing nothing, when the champion moved in between. kind is promotion, forced (a
        failed verdict overridden) or rollback; the last two need a reason.
        """
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind != "promotion" and not (reason or "").strip():
            raise InputError(f"a {'forced promotion' if kind == 'forced' else kind} needs a reason; nothing was changed")
        self.verify(version)
        found = self._store.get("champion.json")
        current = None if found is None else json.loads(found[0])
        current_version = None if current is None else current["version"]
        if current_version == version:
            return False
        if current_version != expected_champion:
            raise ChampionMovedError(
                f"champion of {self.model_name} moved from version {expected_champion} to {current_version} after "
                f"version {version} was evaluated against it; nothing was promoted: re-run the evaluation"
            )
        if current is not None:
            self._write_history(found[0], current["sequence"])
        verdict = self.document(version, "verdict")
        entry = {
            "sequence": 1 if current is None else current["sequence"] + 1,
            "version": version,
            "from": current_version,
            "to": version,
            "at": _now(),
            "kind": kind,
            "run_id": run_id,
            "user": user,
            "reason": reason,
            "verdict": None if verdict is None else {
                "passed": verdict["passed"],
                "failed_checks": [check["name"] for check in verdict.get("checks", []) if not check["passed"]],
            },
        }
        data = _json_bytes(entry)
        try:
            self._store.put("champion.json", data, expect=None if found is None else found[1])
        except _Conflict:
            now = self._store.get("champion.json")
            if now is None or now[0] != data:  # else our own write landed and only its answer was lost
                moved_to = None if now is None else json.loads(now[0])["version"]
                raise ChampionMovedError(
                    f"champion of {self.model_name} changed (now version {moved_to}) while version {version} was being "
                    "promoted; nothing was promoted: re-run the evaluation"
                ) from None
        self._write_history(data, entry["sequence"])
        return True

    def rollback(self, reason: str, to: int | None = None, run_id: str | None = None, user: str | None = None) -> dict:
        """Make an older version the champion again (by default the one before the current champion), recorded as a
        rollback; returns the new history entry."""
        if not (reason or "").strip():
            raise InputError("a rollback needs a reason; nothing was changed")
        current = self.champion()
        if current is None:
            raise InputError(f"{self.model_name} has no champion in {self.where}: nothing to roll back")
        if run_id is not None and current["kind"] == "rollback" and current["run_id"] == run_id:
            return current  # a retry of a rollback that already happened: rolling back again would undo it
        target = current["from"] if to is None else to
        if target is None:
            raise InputError(
                f"version {current['version']} is the first champion of {self.model_name}: there is no previous one; "
                "name a version to roll back to"
            )
        if target == current["version"]:
            raise InputError(f"version {target} already is the champion of {self.model_name}; nothing was changed")
        if target not in self.versions():
            raise InputError(f"{self.model_name} has no version {target} in {self.where}{self._known_versions()}")
        self.promote(target, current["version"], run_id, reason, kind="rollback", user=user)
        return self.champion()


# --- command line ---------------------------------------------------------------------------------------------------


def _table(rows: list[dict], columns: list[str]) -> str:
    cells = [[("-" if row.get(column) is None else str(row[column])) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in [columns, *cells])


def _version_row(registry: Registry, version: int, champion: int | None) -> dict:
    manifest = registry.manifest(version)
    files = manifest["files"]
    verdict = registry.document(version, "verdict")
    metrics = registry.document(version, "metrics")
    accuracy = ((metrics or {}).get("candidate") or {}).get("accuracy")
    return {
        "version": version,
        "champion": "*" if version == champion else "",
        "complete": METADATA in files,
        "verdict": None if verdict is None else "PASSED" if verdict["passed"] else "FAILED",
        "accuracy": None if accuracy is None else f"{accuracy:.4f}",
        "files": len(files),
        "run_id": manifest.get("run_id"),
        "created_at": manifest.get("created_at"),
    }


def _verdict_summary(verdict: dict) -> str:
    """PASSED, or FAILED with the failed checks' names; from a verdict or a history entry's summary of one."""
    failed = verdict["failed_checks"] if "failed_checks" in verdict else [
        check["name"] for check in verdict["checks"] if not check["passed"]]
    return "PASSED" if verdict["passed"] else f"FAILED ({', '.join(failed)})"


def _history_row(entry: dict) -> dict:
    verdict = entry.get("verdict")
    return {**entry, "by": entry.get("user") or entry.get("run_id"),
            "verdict": None if verdict is None else _verdict_summary(verdict)}


HISTORY_COLUMNS = ["sequence", "at", "kind", "from", "to", "by", "verdict", "reason"]


def _parser() -> argparse.ArgumentParser:
    from imagepipe.cli import POSITIVE_INT, JobArgumentParser

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
    registry = Registry(args.registry_uri or settings.registry_uri(), args.model_name)
    try:
        if args.command == "list":
            champion = registry.champion_version()
            result = [_version_row(registry, version, champion) for version in registry.versions()]
            text = _table(result, ["version", "champion", "complete", "verdict", "accuracy", "files", "run_id",
                                   "created_at"]) if result else f"{args.model_name} has no versions in {registry.where}"
        elif args.command == "show":
            manifest = registry.manifest(args.version)
            result = {"version": args.version, "champion": registry.champion_version() == args.version,
                      "manifest": manifest, "metadata": registry.document(args.version, "metadata"),
                      "verdict": registry.document(args.version, "verdict")}
            verdict = result["verdict"]
            lines = [f"{args.model_name} version {args.version}{' (champion)' if result['champion'] else ''}",
                     f"run:      {manifest.get('run_id')}", f"created:  {manifest.get('created_at')}",
                     f"verdict:  {'-' if verdict is None else _verdict_summary(verdict)}"]
            files = [{"file": name, **entry} for name, entry in sorted(manifest["files"].items())]
            text = "\n".join(lines + ["", _table(files, ["file", "size", "sha256"])])
        elif args.command == "champion":
            result = registry.champion()
            text = (f"{args.model_name} has no champion" if result is None
                    else _table([_history_row(result)], ["version", *HISTORY_COLUMNS]))
        elif args.command == "history":
            result = registry.history()
            text = (_table([_history_row(entry) for entry in result], HISTORY_COLUMNS) if result
                    else f"{args.model_name} has no promotion history")
        else:
            result = registry.rollback(args.reason, to=args.to, user=getpass.getuser())
            text = f"champion of {args.model_name} rolled back from version {result['from']} to {result['to']}"
    except InputError as error:
        print(f"registry: error: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result, indent=2, sort_keys=True, default=str) if args.json else text)


if __name__ == "__main__":
    main()
