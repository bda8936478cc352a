"""The champion pointer consumers load by, moved by compare-and-swap, and the append-only history of its moves.

    <root>/<model>/champion.json               the history entry that made the champion
    <root>/<model>/history/<sequence>.json     one entry per champion change, numbered from 1

S3 has no append, and a separate history write after the pointer's could be lost to a crash, or written by a loser
of a race. So the pointer is the one commit point: champion.json *is* the newest history entry, with its sequence
number, written by compare-and-swap (imagepipe.storage's conditional put); only the winner of a race has an entry.
Each entry is then copied, write-once (If-None-Match), to history/<sequence>.json; a copy lost to a crash just after
the swap is rewritten from the pointer by the next promotion, and until then history() takes the newest entry from
the pointer.
"""

from __future__ import annotations

import contextlib
import json

from imagepipe import lake, storage
from imagepipe.errors import InputError
from imagepipe.registry.versions import Versions, now

KINDS = ("promotion", "forced", "rollback")
CHAMPION = "champion.json"


class ChampionMovedError(InputError):
    """The champion changed between evaluation and promotion; nothing was changed."""


class Registry(Versions):
    """A model's registry: its versions, and the champion with the history of how it became champion."""

    def champion(self) -> dict | None:
        """The newest history entry (with `version`, the champion's number), or None before the first promotion."""
        return self._store.read_json(CHAMPION)

    def champion_version(self) -> int | None:
        champion = self.champion()
        return None if champion is None else champion["version"]

    def history(self, read_entry=None) -> list[dict]:
        """Every champion change, oldest first, the entries before the current one read several at a time (by
        `read_entry(sequence)` when given, e.g. through a cache: they are write-once)."""
        pointer = self.champion()
        if pointer is None:
            return []
        return [*storage.read_each(read_entry or self.history_entry, range(1, pointer["sequence"])), pointer]

    def history_entry(self, sequence: int) -> dict:
        """The history's entry `sequence`, before the current champion's (the pointer); write-once."""
        entry = self._store.read_json(f"history/{sequence}.json")
        if entry is None:
            raise InputError(f"history entry {sequence} of {self.model_name} is missing from {self.where}")
        return entry

    def _write_history(self, entry_bytes: bytes, sequence: int) -> None:
        with contextlib.suppress(storage.Conflict):  # already there: entries are write-once and identical
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
            what = "forced promotion" if kind == "forced" else kind
            raise InputError(f"a {what} needs a reason; nothing was changed")
        self.verify(version)
        found = self._store.get(CHAMPION)
        current = None if found is None else json.loads(found.data)
        current_version = None if current is None else current["version"]
        if current_version == version:
            return False
        if current_version != expected_champion:
            raise ChampionMovedError(
                f"champion of {self.model_name} moved from version {expected_champion} to {current_version} after "
                f"version {version} was evaluated against it; nothing was promoted: re-run the evaluation"
            )
        if current is not None:
            self._write_history(found.data, current["sequence"])
        verdict = self.document(version, "verdict")
        entry = {
            "sequence": 1 if current is None else current["sequence"] + 1,
            "version": version,
            "from": current_version,
            "to": version,
            "at": now(),
            "kind": kind,
            "run_id": run_id,
            "user": user,
            "reason": reason,
            "verdict": None if verdict is None else {
                "passed": verdict["passed"],
                "failed_checks": [check["name"] for check in verdict.get("checks", []) if not check["passed"]],
            },
        }
        data = storage.json_bytes(entry)
        try:
            self._store.put(CHAMPION, data, expect=None if found is None else found.tag)
        except storage.Conflict:
            now_there = self._store.get(CHAMPION)
            if now_there is None or now_there.data != data:  # else our own write landed and only its answer was lost
                moved_to = None if now_there is None else json.loads(now_there.data)["version"]
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
        if current is not None and run_id is not None and current["kind"] == "rollback" and current["run_id"] == run_id:
            return current  # a retry of a rollback that already happened: rolling back again would undo it
        target = self.rollback_target(to)
        self.promote(target, current["version"], run_id, reason, kind="rollback", user=user)
        return self.champion()

    def rollback_target(self, to: int | None = None) -> int:
        """The version a rollback to `to` (None: the champion before the current one) would make champion, or the
        rollback's refusal in one line: what the rollback job and the Models page's form both check."""
        current = self.champion()
        if current is None:
            raise InputError(f"{self.model_name} has no champion in {self.where}: nothing to roll back")
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
        if target not in {entry["to"] for entry in self.history()}:
            # A rollback is not a way past a gate: it returns only to a model that has served before.
            raise InputError(
                f"version {target} of {self.model_name} has never been champion, so there is nothing to roll back to; "
                "to make it champion past its gate, use a forced promotion (force_promote with a force_reason)"
            )
        return target


def open_registry(model_name: str, registry_uri: str | None = None, lake_root: str | None = None) -> Registry:
    """The registry at registry_uri, else at IMAGEPIPE_REGISTRY_URI, else in the lake (lake_root, else the
    environment's lake)."""
    return Registry(registry_uri or lake.registry_uri(lake_root), model_name)
