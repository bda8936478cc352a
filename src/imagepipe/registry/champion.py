"""The champion pointer consumers load by, moved by compare-and-swap, and the append-only history of its moves.

    <root>/<model>/champion.json               the history entry that made the champion
    <root>/<model>/history/<sequence>.json     one entry per champion change, numbered from 1

S3 has no append, and a separate history write after the pointer's could be lost to a crash, or written by a loser
of a race. So the pointer is the one commit point: champion.json *is* the newest history entry, with its sequence
number, written by compare-and-swap (imagepipe.storage's conditional put); only the winner of a race has an entry.
Each entry is then copied, write-once (If-None-Match), to history/<sequence>.json; a copy lost to a crash just after
the swap is rewritten from the pointer by the next promotion, and until then history() takes the newest entry from
the pointer. Each entry also carries which versions have been champion and the entries that made them so
(made_champion), so a rollback's check and a page read one entry, not the whole history.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import ClassVar

from imagepipe import lake, storage
from imagepipe.errors import InputError
from imagepipe.records import RunRecord
from imagepipe.registry.versions import Versions, now

KINDS = ("promotion", "forced", "rollback")
CHAMPION = "champion.json"


@dataclass(frozen=True)
class ChampionEntry(RunRecord):
    """One champion change: champion.json holds the newest, history/<sequence>.json each one."""

    KIND: ClassVar[str] = "champion history"
    REMEDY: ClassVar[str] = "the registry's champion history is damaged: restore the file from a backup"
    sequence: int
    version: int  # the champion it made (`to` in the JSON as well)
    from_version: int | None  # the champion before it (`from` in the JSON)
    at: str
    kind: str
    run_id: str | None
    user: str | None
    reason: str | None
    verdict: dict | None  # the version's verdict when this entry was written: passed, failed_checks
    # Each version that has been champion (a string, as a JSON key) -> the sequences of the entries that made it
    # champion, this one included: what rollbacks and pages need without reading every entry.
    made_champion: dict | None
    JSON_KEYS: ClassVar[dict] = {"from_version": "from"}
    # Entries written before made_champion was kept: Registry.made_champion reads it from the whole history.
    DEFAULTS: ClassVar[dict] = {"made_champion": None}

    def to_json(self) -> dict:
        return {**super().to_json(), "to": self.version}


class ChampionMovedError(InputError):
    """The champion changed between evaluation and promotion; nothing was changed."""


class Registry(Versions):
    """A model's registry: its versions, and the champion with the history of how it became champion."""

    def champion(self) -> ChampionEntry | None:
        """The newest history entry (its `version` is the champion), or None before the first promotion."""
        return self._entry(CHAMPION)

    def champion_version(self) -> int | None:
        champion = self.champion()
        return None if champion is None else champion.version

    def _entry(self, name: str) -> ChampionEntry | None:
        found = self._store.get(name)
        return None if found is None else self._parsed(found.data, name)

    def _parsed(self, data: bytes, name: str) -> ChampionEntry:
        return ChampionEntry.from_json(json.loads(data), f"{self.where}/{name}")

    def history(self, newest: int | None = None, read_entry=None) -> list[ChampionEntry]:
        """The champion changes, oldest first: every one, or only the `newest` few."""
        return self.history_up_to(self.champion(), newest, read_entry)

    def history_up_to(self, pointer: ChampionEntry | None, newest: int | None = None,
                      read_entry=None) -> list[ChampionEntry]:
        """The changes up to `pointer` (the champion entry already read), oldest first: every one, or the `newest`
        few. The entries before the pointer are read several at a time (by `read_entry(sequence)` when given, e.g.
        through a cache: they are write-once)."""
        if pointer is None:
            return []
        first = 1 if newest is None else max(1, pointer.sequence - newest + 1)
        return self.entries(pointer, range(first, pointer.sequence + 1), read_entry)

    def entries(self, pointer: ChampionEntry, sequences, read_entry=None) -> list[ChampionEntry]:
        """The history's entries `sequences`, in their order, read several at a time (the pointer's own from the
        pointer: its history copy may not be written yet)."""
        read = read_entry or self.history_entry
        return storage.read_each(lambda sequence: pointer if sequence == pointer.sequence else read(sequence),
                                 sequences)

    def history_entry(self, sequence: int) -> ChampionEntry:
        """The history's entry `sequence`, before the current champion's (the pointer); write-once."""
        entry = self._entry(f"history/{sequence}.json")
        if entry is None:
            raise InputError(f"history entry {sequence} of {self.model_name} is missing from {self.where}")
        return entry

    def made_champion(self, pointer: ChampionEntry | None, read_entry=None) -> dict[int, list[int]]:
        """Each version that has been champion up to `pointer` (the current entry) -> the sequences of the entries
        that made it champion. Kept in the entry; a history written before it was kept is read whole instead (the
        one place such a history is upgraded: the next promotion writes it into its entry)."""
        if pointer is None:
            return {}
        if pointer.made_champion is not None:
            return {int(version): list(sequences) for version, sequences in pointer.made_champion.items()}
        made: dict[int, list[int]] = {}
        for entry in self.history_up_to(pointer, read_entry=read_entry):
            made.setdefault(entry.version, []).append(entry.sequence)
        return made

    def champion_entries(self, version: int, read_entry=None) -> list[ChampionEntry]:
        """The history entries that made `version` champion, oldest first (none when it never was)."""
        pointer = self.champion()
        return self.entries(pointer, self.made_champion(pointer, read_entry).get(version, []), read_entry)

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
        current = None if found is None else self._parsed(found.data, CHAMPION)
        current_version = None if current is None else current.version
        if current_version == version:
            return False
        if current_version != expected_champion:
            raise ChampionMovedError(
                f"champion of {self.model_name} moved from version {expected_champion} to {current_version} after "
                f"version {version} was evaluated against it; nothing was promoted: re-run the evaluation"
            )
        if current is not None:
            self._write_history(found.data, current.sequence)
        verdict = self.verdict(version)
        sequence = 1 if current is None else current.sequence + 1
        made = self.made_champion(current)
        made.setdefault(version, []).append(sequence)
        entry = ChampionEntry(
            sequence=sequence, version=version, from_version=current_version, at=now(), kind=kind, run_id=run_id,
            user=user, reason=reason,
            verdict=None if verdict is None else {"passed": verdict.passed, "failed_checks": verdict.failed_checks},
            made_champion={str(version): sequences for version, sequences in sorted(made.items())})
        data = storage.json_bytes(entry.to_json())
        try:
            self._store.put(CHAMPION, data, expect=None if found is None else found.tag)
        except storage.Conflict:
            now_there = self._store.get(CHAMPION)
            if now_there is None or now_there.data != data:  # else our own write landed and only its answer was lost
                moved_to = None if now_there is None else self._parsed(now_there.data, CHAMPION).version
                raise ChampionMovedError(
                    f"champion of {self.model_name} changed (now version {moved_to}) while version {version} was being "
                    "promoted; nothing was promoted: re-run the evaluation"
                ) from None
        self._write_history(data, sequence)
        return True

    def rollback(self, reason: str, to: int | None = None, run_id: str | None = None,
                 user: str | None = None) -> ChampionEntry:
        """Make an older version the champion again (by default the one before the current champion), recorded as a
        rollback; returns the new history entry."""
        if not (reason or "").strip():
            raise InputError("a rollback needs a reason; nothing was changed")
        current = self.champion()
        if current is not None and run_id is not None and current.kind == "rollback" and current.run_id == run_id:
            return current  # a retry of a rollback that already happened: rolling back again would undo it
        target = self.rollback_target(to)
        self.promote(target, current.version, run_id, reason, kind="rollback", user=user)
        return self.champion()

    def rollback_target(self, to: int | None = None) -> int:
        """The version a rollback to `to` (None: the champion before the current one) would make champion, or the
        rollback's refusal in one line: what the rollback job and the Models page's form both check."""
        current = self.champion()
        if current is None:
            raise InputError(f"{self.model_name} has no champion in {self.where}: nothing to roll back")
        target = current.from_version if to is None else to
        if target is None:
            raise InputError(
                f"version {current.version} is the first champion of {self.model_name}: there is no previous one; "
                "name a version to roll back to"
            )
        if target == current.version:
            raise InputError(f"version {target} already is the champion of {self.model_name}; nothing was changed")
        if target not in self.versions():
            raise InputError(f"{self.model_name} has no version {target} in {self.where}{self._known_versions()}")
        if target not in self.made_champion(current):
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
