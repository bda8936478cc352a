"""The champion of a registry on a local path: compare-and-swap promotion, its history, rollback, and where a job's
registry is (tests/s3/test_registry_on_object_storage.py runs them on S3 too)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from imagepipe.errors import InputError
from imagepipe.registry import ChampionMovedError, Registry, open_registry
from unit.registry_helpers import *  # noqa: F403 (the fixtures backend, root)
from unit.registry_helpers import (
    MODEL,
    failing_verdict,
    moves,
    passing_verdict,
    promoted_three_times,
    registry_with_versions,
)


def test_first_promotion_makes_the_first_champion(root):
    registry = registry_with_versions(root, 1)
    assert registry.champion() is None

    promoted = registry.promote(1, expected_champion=None, run_id="run-0", reason="first model")

    assert promoted is True
    assert registry.champion_version() == 1
    [entry] = registry.history()
    assert {key: entry.to_json()[key] for key in ("from", "to", "run_id", "kind", "reason", "verdict")} == {
        "from": None, "to": 1, "run_id": "run-0", "kind": "promotion", "reason": "first model",
        "verdict": {"passed": True, "failed_checks": []},
    }
    assert entry.at == registry.champion().at


def test_promotion_moves_the_champion_and_a_retry_changes_nothing(root, backend):
    registry = registry_with_versions(root, 2)
    registry.promote(1, None, "run-0", "first model")
    assert registry.promote(2, expected_champion=1, run_id="run-1", reason="better") is True
    pointer = backend.read("champion.json")

    # A retried promote task: same version, same expected champion as its first attempt saw.
    assert registry.promote(2, expected_champion=1, run_id="run-1", reason="better") is False

    assert backend.read("champion.json") == pointer
    assert moves(registry) == [(None, 1, "promotion"), (1, 2, "promotion")]


def test_promotion_after_an_external_pointer_change_is_refused_and_changes_nothing(root, backend):
    registry = registry_with_versions(root, 3)
    registry.promote(1, None, "run-0", "first model")
    # Someone else makes version 2 champion while version 3 is judged against version 1.
    Registry(root, MODEL).promote(2, 1, "run-1", "better")
    pointer, history = backend.read("champion.json"), registry.history()

    with pytest.raises(ChampionMovedError, match="moved from version 1 to 2 after version 3 was evaluated"):
        registry.promote(3, expected_champion=1, run_id="run-2", reason="evaluated against 1")

    assert backend.read("champion.json") == pointer
    assert registry.history() == history
    assert registry.champion_version() == 2


def test_a_pointer_rewritten_between_read_and_swap_makes_the_promotion_fail(root, backend, monkeypatch):
    registry = registry_with_versions(root, 2)
    registry.promote(1, None, "run-0", "first model")
    store_get = registry._store.get
    rewritten = {}

    def get_then_rewrite(key):
        # Another writer rewrites the pointer right after this promotion read it (same version, new note).
        found = store_get(key)
        if key == "champion.json" and not rewritten:
            rewritten["bytes"] = found[0].replace(b"first model", b"edited by hand")
            backend.write("champion.json", rewritten["bytes"])
        return found

    monkeypatch.setattr(registry._store, "get", get_then_rewrite)
    with pytest.raises(ChampionMovedError, match="changed \\(now version 1\\) while version 2 was being promoted"):
        registry.promote(2, 1, "run-1", "better")

    assert backend.read("champion.json") == rewritten["bytes"]
    assert moves(Registry(root, MODEL)) == [(None, 1, "promotion")]


def test_champion_moved_is_an_input_error():
    # Jobs report InputErrors in one line and exit 1 instead of a traceback.
    assert issubclass(ChampionMovedError, InputError)


def test_promotion_of_an_incomplete_version_is_refused(root):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")

    with pytest.raises(InputError, match="missing or incomplete"):
        registry.promote(version, None, "run-a", "no metadata yet")

    assert registry.champion() is None
    assert registry.history() == []


def test_a_forced_promotion_is_recorded_as_forced_with_its_reason(root):
    registry = registry_with_versions(root, 2)
    registry.promote(1, None, "run-0", "first model")
    version = registry.allocate_version("run-forced")
    registry.write_document(version, "metadata", {"version": version})
    registry.write_document(version, "verdict", failing_verdict(1))

    with pytest.raises(InputError, match="a forced promotion needs a reason; nothing was changed"):
        registry.promote(version, 1, "run-forced", "  ", kind="forced")
    registry.promote(version, 1, "run-forced", "hotfix for a mislabelled class", kind="forced")

    entry = registry.history()[-1]
    assert (entry.from_version, entry.version, entry.kind) == (1, version, "forced")
    assert entry.reason == "hotfix for a mislabelled class"
    assert entry.verdict == {"passed": False, "failed_checks": ["min_accuracy"]}


def test_history_survives_a_crash_between_the_swap_and_its_copy(root, backend):
    registry = registry_with_versions(root, 3)
    registry.promote(1, None, "run-0", "first model")
    registry.promote(2, 1, "run-1", "better")
    backend.delete("history/2.json")  # as if the process died right after moving the pointer

    assert moves(registry) == [(None, 1, "promotion"), (1, 2, "promotion")]
    registry.promote(3, 2, "run-2", "better still")

    assert backend.read("history/2.json")
    assert [entry.sequence for entry in registry.history()] == [1, 2, 3]


WORKER = """
import json, sys, time
from pathlib import Path
from imagepipe.registry import ChampionMovedError, Registry

root, model, version, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
registry = Registry(root, model)
(folder / f"ready-{version}").touch()
while not (folder / "go").exists():
    time.sleep(0.001)
try:
    print(json.dumps(registry.promote(version, 1, f"run-{version}", "race")))
except ChampionMovedError:
    print(json.dumps("moved"))
"""


@pytest.mark.parametrize("contenders", [2, 10])
def test_concurrent_promotions_from_separate_processes_let_exactly_one_win(root, tmp_path, contenders):
    registry = registry_with_versions(root, 1 + contenders)
    registry.promote(1, None, "run-0", "first model")
    versions = list(range(2, 2 + contenders))
    processes = {version: subprocess.Popen([sys.executable, "-c", WORKER, root, MODEL, str(version), str(tmp_path)],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for version in versions}
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < contenders and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()  # all start promoting at once

    outcomes = {}
    for version, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes[version] = json.loads(out)

    winners = [version for version, outcome in outcomes.items() if outcome is True]
    assert len(winners) == 1, outcomes
    moved = sorted(version for version, outcome in outcomes.items() if outcome == "moved")
    assert moved == sorted(set(versions) - set(winners))
    assert registry.champion_version() == winners[0]
    history = registry.history()
    assert [(entry.sequence, entry.from_version, entry.version) for entry in history] == [(1, None, 1),
                                                                                          (2, 1, winners[0])]



def test_rollback_returns_to_the_previous_champion(root):
    registry = promoted_three_times(root)

    entry = registry.rollback("version 3 mislabels beaches", user="alice")

    assert registry.champion_version() == 2
    assert (entry.from_version, entry.version, entry.kind, entry.user) == (3, 2, "rollback", "alice")
    assert moves(registry)[-1] == (3, 2, "rollback")
    assert registry.history()[-1].reason == "version 3 mislabels beaches"


def test_rollback_to_a_named_version(root):
    registry = promoted_three_times(root)

    registry.rollback("back to the first model", to=1)

    assert registry.champion_version() == 1
    assert moves(registry)[-1] == (3, 1, "rollback")


def test_rollback_to_a_version_that_does_not_exist_is_refused_naming_the_versions(root, backend):
    registry = promoted_three_times(root)
    pointer = backend.read("champion.json")

    with pytest.raises(InputError, match=r"has no version 9 .*\(versions: 1, 2, 3\)"):
        registry.rollback("typo", to=9)

    assert backend.read("champion.json") == pointer
    assert len(registry.history()) == 3


def test_rollback_goes_only_to_a_former_champion_and_points_a_never_promoted_one_to_forced_promotion(root, backend):
    registry = registry_with_versions(root, 3)
    registry.promote(1, None, "run-0", "first model")
    registry.promote(3, 1, "run-2", "better")  # version 2 failed its gate and was never champion
    pointer = backend.read("champion.json")

    with pytest.raises(InputError, match="version 2 of .* has never been champion.* forced promotion"):
        registry.rollback("version 2 looked fine", to=2)

    assert backend.read("champion.json") == pointer
    registry.rollback("back to the first model", to=1)
    assert registry.champion_version() == 1


def test_rollback_needs_a_champion_a_previous_one_and_a_reason(root):
    registry = registry_with_versions(root, 2)
    with pytest.raises(InputError, match="has no champion .*nothing to roll back"):
        registry.rollback("nothing yet")
    registry.promote(1, None, "run-0", "first model")
    with pytest.raises(InputError, match="version 1 is the first champion .*no previous one"):
        registry.rollback("no previous")
    with pytest.raises(InputError, match="a rollback needs a reason"):
        registry.rollback("", to=2)
    with pytest.raises(InputError, match="version 1 already is the champion"):
        registry.rollback("same", to=1)
    assert len(registry.history()) == 1


def test_a_retried_rollback_of_the_same_run_changes_nothing(root):
    registry = promoted_three_times(root)
    registry.rollback("bad release", run_id="manual__rollback-1")

    entry = registry.rollback("bad release", run_id="manual__rollback-1")

    assert registry.champion_version() == 2 and entry.version == 2
    assert len(registry.history()) == 4


def test_rollback_refuses_a_target_with_a_tampered_file(root, backend):
    registry = promoted_three_times(root)
    backend.write("versions/1/metadata.json", b'{"version": 1, "edited": true}\n')

    with pytest.raises(InputError, match="version 1 is corrupted: metadata.json"):
        registry.rollback("back to 1", to=1)
    assert registry.champion_version() == 3



def _another_version(registry: Registry) -> int:
    version = registry.allocate_version(f"run-{len(registry.versions())}")
    registry.write_document(version, "metadata", {"version": version})
    registry.write_document(version, "verdict", passing_verdict(version - 1))
    return version


def test_each_entry_knows_which_versions_have_been_champion_so_a_rollback_reads_one_entry(root, backend):
    registry = promoted_three_times(root)
    registry.rollback("version 3 mislabels beaches")

    assert registry.made_champion(registry.champion()) == {1: [1], 2: [2, 4], 3: [3]}
    assert [entry.sequence for entry in registry.champion_entries(2)] == [2, 4]
    for key in backend.keys("history"):  # the rollback's check and the pages need only the pointer
        backend.delete(key)
    assert registry.rollback_target(1) == 1
    with pytest.raises(InputError, match="version 4 of image_classifier has never been champion"):
        registry.rollback_target(_another_version(registry))


def test_a_history_written_before_entries_kept_their_champions_reads_and_is_upgraded_by_the_next_promotion(
        root, backend):
    registry = promoted_three_times(root)
    _another_version(registry)
    for key in ["champion.json", *backend.keys("history")]:  # as the registry wrote them before (format 0)
        document = json.loads(backend.read(key))
        del document["format"], document["made_champion"]
        backend.write(key, json.dumps(document).encode())

    assert registry.champion().made_champion is None
    assert registry.made_champion(registry.champion()) == {1: [1], 2: [2], 3: [3]}
    assert registry.rollback_target(1) == 1
    registry.promote(4, 3, "run-3", "newer")

    assert registry.champion().made_champion == {"1": [1], "2": [2], "3": [3], "4": [4]}
    assert moves(registry)[-1] == (3, 4, "promotion")


def test_a_malformed_history_entry_is_refused_in_one_line_naming_its_file(root, backend):
    registry = promoted_three_times(root)
    backend.write("history/2.json", b'{"sequence": 2, "version": 2}')

    with pytest.raises(InputError, match=r"history/2.json: champion history record lacks from; the registry's "
                                         "champion history is damaged"):
        registry.history()


def test_a_jobs_registry_is_the_one_named_else_the_environments_else_the_lakes(tmp_path, monkeypatch):
    lake_root = str(tmp_path / "lake")
    monkeypatch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
    assert open_registry(MODEL, None, lake_root).where == str(tmp_path / "lake" / "registry" / MODEL)

    monkeypatch.setenv("IMAGEPIPE_REGISTRY_URI", str(tmp_path / "shared"))
    assert open_registry(MODEL, None, lake_root).where == str(tmp_path / "shared" / MODEL)
    assert open_registry(MODEL, str(tmp_path / "named"), lake_root).where == str(tmp_path / "named" / MODEL)
