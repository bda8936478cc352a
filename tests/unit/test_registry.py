import threading

import pytest

from imagepipe.errors import InputError
from imagepipe.registry import ChampionMovedError, Registry

MODEL = "image_classifier"


def registry_with_versions(root, count: int) -> Registry:
    """A registry holding `count` complete versions (numbered 1..count)."""
    registry = Registry(str(root), MODEL)
    for index in range(count):
        version = registry.allocate_version(f"run-{index}")
        registry.write_document(version, "metadata", {"version": version})
    return registry


def test_object_storage_root_is_refused():
    with pytest.raises(InputError, match="is on object storage; this registry needs a local or mounted path"):
        Registry("s3://bucket/lake/registry", MODEL)


def test_allocate_version_numbers_runs_one_two_three(tmp_path):
    registry = Registry(str(tmp_path), MODEL)

    assert [registry.allocate_version(run) for run in ("run-a", "run-b", "run-c")] == [1, 2, 3]
    assert registry.versions() == [1, 2, 3]


def test_allocate_version_gives_a_retried_run_its_earlier_number(tmp_path):
    registry = Registry(str(tmp_path), MODEL)
    first = registry.allocate_version("manual__2026-01-01T00:00:00+00:00")
    registry.allocate_version("scheduled__2026-01-02T00:00:00+00:00")

    again = registry.allocate_version("manual__2026-01-01T00:00:00+00:00")

    assert (first, again) == (1, 1)
    assert registry.version_for_run("manual__2026-01-01T00:00:00+00:00") == 1
    assert registry.versions() == [1, 2]


def test_allocation_survives_a_new_registry_object(tmp_path):
    Registry(str(tmp_path), MODEL).allocate_version("run-a")

    assert Registry(str(tmp_path), MODEL).allocate_version("run-b") == 2


def test_models_are_numbered_independently(tmp_path):
    Registry(str(tmp_path), "model_a").allocate_version("run-a")

    assert Registry(str(tmp_path), "model_b").allocate_version("run-a") == 1


def test_metadata_of_incomplete_version_is_an_input_error(tmp_path):
    registry = Registry(str(tmp_path), MODEL)
    version = registry.allocate_version("run-a")  # allocated, but its metadata.json was never written

    with pytest.raises(InputError, match=f"{MODEL} version 1 is missing or incomplete"):
        registry.metadata(version)
    with pytest.raises(InputError, match=f"{MODEL} version 7 is missing or incomplete"):
        registry.metadata(7)


def test_documents_round_trip(tmp_path):
    registry = Registry(str(tmp_path), MODEL)
    version = registry.allocate_version("run-a")

    registry.write_document(version, "metrics", {"accuracy": 0.9})

    assert registry.document(version, "metrics") == {"accuracy": 0.9}
    assert registry.document(version, "verdict") is None


def test_first_promotion_makes_the_first_champion(tmp_path):
    registry = registry_with_versions(tmp_path, 1)
    assert registry.champion() is None

    promoted = registry.promote(1, expected_champion=None, run_id="run-0", reason="first model")

    assert promoted is True
    assert registry.champion_version() == 1
    assert registry.champion()["run_id"] == "run-0"
    [entry] = registry.history()
    assert {key: entry[key] for key in ("from", "to", "run_id", "reason")} == {
        "from": None,
        "to": 1,
        "run_id": "run-0",
        "reason": "first model",
    }
    assert entry["at"] == registry.champion()["promoted_at"]


def test_promotion_moves_the_champion_and_appends_history(tmp_path):
    registry = registry_with_versions(tmp_path, 2)
    registry.promote(1, None, "run-0", "first model")

    assert registry.promote(2, expected_champion=1, run_id="run-1", reason="better") is True

    assert registry.champion_version() == 2
    assert [(entry["from"], entry["to"]) for entry in registry.history()] == [(None, 1), (1, 2)]


def test_repeated_promotion_of_the_champion_changes_nothing(tmp_path):
    registry = registry_with_versions(tmp_path, 1)
    registry.promote(1, None, "run-0", "first model")
    champion_file = tmp_path / MODEL / "champion.json"
    history_file = tmp_path / MODEL / "history.jsonl"
    champion_before, history_before = champion_file.read_bytes(), history_file.read_bytes()

    # A retried promote task: same version, same expected champion as its first attempt saw.
    promoted = registry.promote(1, None, "run-0", "first model")

    assert promoted is False
    assert champion_file.read_bytes() == champion_before
    assert history_file.read_bytes() == history_before
    assert len(registry.history()) == 1


def test_promotion_against_a_stale_champion_raises_and_changes_nothing(tmp_path):
    registry = registry_with_versions(tmp_path, 3)
    registry.promote(1, None, "run-0", "first model")
    registry.promote(2, 1, "run-1", "better")
    champion_file = tmp_path / MODEL / "champion.json"
    history_file = tmp_path / MODEL / "history.jsonl"
    champion_before, history_before = champion_file.read_bytes(), history_file.read_bytes()

    # Version 3 was evaluated while version 1 was champion; version 2 has been promoted since.
    with pytest.raises(ChampionMovedError, match="moved from version 1 to 2 after version 3 was evaluated"):
        registry.promote(3, expected_champion=1, run_id="run-2", reason="evaluated against 1")

    assert champion_file.read_bytes() == champion_before
    assert history_file.read_bytes() == history_before
    assert registry.champion_version() == 2


def test_champion_moved_is_an_input_error():
    # Jobs report InputErrors in one line and exit 1 instead of a traceback.
    assert issubclass(ChampionMovedError, InputError)


def test_promotion_of_an_incomplete_version_is_refused(tmp_path):
    registry = Registry(str(tmp_path), MODEL)
    version = registry.allocate_version("run-a")

    with pytest.raises(InputError, match="missing or incomplete"):
        registry.promote(version, None, "run-a", "no metadata yet")

    assert registry.champion() is None
    assert registry.history() == []


# Repeated: a race shows up only in some rounds, so one round could pass without the lock.
@pytest.mark.parametrize("round_number", range(10))
def test_concurrent_promotions_from_the_same_champion_let_exactly_one_win(tmp_path, round_number):
    contenders = [2, 3, 4, 5]
    registry = registry_with_versions(tmp_path, 1 + len(contenders))
    registry.promote(1, None, "run-0", "first model")
    start = threading.Barrier(len(contenders))
    outcomes: dict[int, object] = {}

    def promote(version: int) -> None:
        # Each contender uses its own Registry object, as separate job processes would.
        contender = Registry(str(tmp_path), MODEL)
        start.wait()
        try:
            outcomes[version] = contender.promote(version, expected_champion=1, run_id=f"run-{version}", reason="race")
        except ChampionMovedError as error:
            outcomes[version] = error

    threads = [threading.Thread(target=promote, args=(version,)) for version in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [version for version, outcome in outcomes.items() if outcome is True]
    losers = [version for version, outcome in outcomes.items() if isinstance(outcome, ChampionMovedError)]
    assert len(winners) == 1
    assert sorted(winners + losers) == contenders
    assert registry.champion_version() == winners[0]
    assert [(entry["from"], entry["to"]) for entry in registry.history()] == [(None, 1), (1, winners[0])]
