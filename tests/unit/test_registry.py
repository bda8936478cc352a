"""The model registry on a local path. tests/s3/test_registry_on_object_storage.py runs this same suite against the
S3 endpoint by overriding the `backend` fixture: every behaviour here holds on both."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.registry import ChampionMovedError, Registry, main
from spark_jobs import promote_model

MODEL = "image_classifier"


class LocalBackend:
    """Reads and writes a registry's files behind its back, as another program with access to the folder would."""

    def __init__(self, root: Path):
        self.root = str(root)

    def write(self, key: str, data: bytes) -> None:
        (Path(self.root) / MODEL / key).write_bytes(data)

    def read(self, key: str) -> bytes:
        return (Path(self.root) / MODEL / key).read_bytes()

    def delete(self, key: str) -> None:
        (Path(self.root) / MODEL / key).unlink()

    def keys(self, prefix: str) -> list[str]:
        base = Path(self.root) / MODEL
        return sorted(str(path.relative_to(base)) for path in (base / prefix).rglob("*") if path.is_file())


@pytest.fixture
def backend(tmp_path):
    return LocalBackend(tmp_path / "registry")


@pytest.fixture
def root(backend) -> str:
    return backend.root


def registry_with_versions(root: str, count: int) -> Registry:
    """A registry holding `count` complete versions (numbered 1..count), each with a passing verdict."""
    registry = Registry(root, MODEL)
    for index in range(count):
        version = registry.allocate_version(f"run-{index}")
        registry.write_document(version, "metadata", {"version": version})
        registry.write_document(version, "verdict", passing_verdict(version - 1 if version > 1 else None))
    return registry


def passing_verdict(champion_version: int | None) -> dict:
    return {"passed": True, "champion_version": champion_version,
            "checks": [{"name": "min_accuracy", "passed": True, "detail": "accuracy 0.9000 >= 0.8000"}]}


def failing_verdict(champion_version: int | None) -> dict:
    return {"passed": False, "champion_version": champion_version,
            "checks": [{"name": "min_accuracy", "passed": False, "detail": "accuracy 0.4000 < 0.8000"}]}


def moves(registry: Registry) -> list[tuple]:
    return [(entry["from"], entry["to"], entry["kind"]) for entry in registry.history()]


# --- versions and files ---------------------------------------------------------------------------------------------


def test_allocate_version_numbers_runs_one_two_three_and_reuses_a_retried_runs_number(root):
    registry = Registry(root, MODEL)

    assert [registry.allocate_version(run) for run in ("run-a", "run-b", "run-c")] == [1, 2, 3]
    assert Registry(root, MODEL).allocate_version("run-b") == 2
    assert registry.version_for_run("run-c") == 3
    assert registry.versions() == [1, 2, 3]
    assert Registry(root, "other_model").allocate_version("run-a") == 1


def test_metadata_of_an_incomplete_or_unknown_version_is_an_input_error(root):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")  # allocated, but its metadata.json was never written

    with pytest.raises(InputError, match=f"{MODEL} version 1 is missing or incomplete"):
        registry.metadata(version)
    with pytest.raises(InputError, match=f"{MODEL} version 7 is missing or incomplete"):
        registry.metadata(7)


def test_documents_and_files_are_recorded_with_their_sha256_and_are_write_once(root):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    registry.write_document(version, "metrics", {"accuracy": 0.9})
    registry.write_file(version, "confusion_matrix.png", png)
    registry.write_document(version, "metrics", {"accuracy": 0.9})  # a retry writing the same content: no change

    assert registry.document(version, "metrics") == {"accuracy": 0.9}
    assert registry.document(version, "verdict") is None
    assert registry.read_file(version, "confusion_matrix.png") == png
    files = registry.manifest(version)["files"]
    assert files["confusion_matrix.png"]["size"] == len(png)
    assert len(files["confusion_matrix.png"]["sha256"]) == 64
    with pytest.raises(InputError, match="already holds metrics.json with other content; versions are immutable"):
        registry.write_document(version, "metrics", {"accuracy": 0.99})
    assert registry.document(version, "metrics") == {"accuracy": 0.9}
    with pytest.raises(InputError, match="cannot name a registry file"):
        registry.write_file(version, "../escape.md", b"x")


def test_a_file_from_a_local_path_is_published(root, tmp_path):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    report = tmp_path / "report.md"
    report.write_text("# Version 1\n")

    registry.write_file(version, "report.md", report)

    assert registry.read_file(version, "report.md") == b"# Version 1\n"


def test_a_document_changed_behind_the_registrys_back_is_refused(root, backend):
    registry = registry_with_versions(root, 1)
    backend.write("versions/1/verdict.json", json.dumps(failing_verdict(None)).encode())

    with pytest.raises(InputError, match="version 1 is corrupted: verdict.json does not match its recorded sha256"):
        registry.document(1, "verdict")


# --- promotion --------------------------------------------------------------------------------------------------------


def test_first_promotion_makes_the_first_champion(root):
    registry = registry_with_versions(root, 1)
    assert registry.champion() is None

    promoted = registry.promote(1, expected_champion=None, run_id="run-0", reason="first model")

    assert promoted is True
    assert registry.champion_version() == 1
    [entry] = registry.history()
    assert {key: entry[key] for key in ("from", "to", "run_id", "kind", "reason", "verdict")} == {
        "from": None, "to": 1, "run_id": "run-0", "kind": "promotion", "reason": "first model",
        "verdict": {"passed": True, "failed_checks": []},
    }
    assert entry["at"] == registry.champion()["at"]


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
    assert (entry["from"], entry["to"], entry["kind"]) == (1, version, "forced")
    assert entry["reason"] == "hotfix for a mislabelled class"
    assert entry["verdict"] == {"passed": False, "failed_checks": ["min_accuracy"]}


def test_history_survives_a_crash_between_the_swap_and_its_copy(root, backend):
    registry = registry_with_versions(root, 3)
    registry.promote(1, None, "run-0", "first model")
    registry.promote(2, 1, "run-1", "better")
    backend.delete("history/2.json")  # as if the process died right after moving the pointer

    assert moves(registry) == [(None, 1, "promotion"), (1, 2, "promotion")]
    registry.promote(3, 2, "run-2", "better still")

    assert backend.read("history/2.json")
    assert [entry["sequence"] for entry in registry.history()] == [1, 2, 3]


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
    assert [(entry["sequence"], entry["from"], entry["to"]) for entry in history] == [(1, None, 1), (2, 1, winners[0])]


# --- rollback ---------------------------------------------------------------------------------------------------------


def promoted_three_times(root: str) -> Registry:
    registry = registry_with_versions(root, 3)
    registry.promote(1, None, "run-0", "first model")
    registry.promote(2, 1, "run-1", "better")
    registry.promote(3, 2, "run-2", "better still")
    return registry


def test_rollback_returns_to_the_previous_champion(root):
    registry = promoted_three_times(root)

    entry = registry.rollback("version 3 mislabels beaches", user="alice")

    assert registry.champion_version() == 2
    assert (entry["from"], entry["to"], entry["kind"], entry["user"]) == (3, 2, "rollback", "alice")
    assert moves(registry)[-1] == (3, 2, "rollback")
    assert registry.history()[-1]["reason"] == "version 3 mislabels beaches"


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

    assert registry.champion_version() == 2 and entry["to"] == 2
    assert len(registry.history()) == 4


def test_rollback_refuses_a_target_with_a_tampered_file(root, backend):
    registry = promoted_three_times(root)
    backend.write("versions/1/metadata.json", b'{"version": 1, "edited": true}\n')

    with pytest.raises(InputError, match="version 1 is corrupted: metadata.json"):
        registry.rollback("back to 1", to=1)
    assert registry.champion_version() == 3


# --- models (Spark) ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(spark):
    """A fitted PipelineModel (a StringIndexer on three rows) and the frame it was fitted on."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer

    frame = spark.createDataFrame([("beach",), ("forest",), ("forest",)], ["label"])
    return Pipeline(stages=[StringIndexer(inputCol="label", outputCol="index")]).fit(frame), frame


def saved_version(root: str, tiny_model, run_id: str = "run-a") -> Registry:
    registry = Registry(root, MODEL)
    version = registry.allocate_version(run_id)
    registry.save_model(version, tiny_model[0])
    registry.write_document(version, "metadata", {"version": version})
    return registry


def indexed(model, frame) -> list[tuple]:
    return sorted((row["label"], row["index"]) for row in model.transform(frame).collect())


def test_a_saved_model_loads_after_its_checksums_are_verified(root, tiny_model):
    model, frame = tiny_model
    registry = saved_version(root, tiny_model)

    loaded = registry.load_model(1)

    assert indexed(loaded, frame) == indexed(model, frame) == [("beach", 1.0), ("forest", 0.0), ("forest", 0.0)]
    model_files = [name for name in registry.manifest(1)["files"] if name.startswith("model/")]
    assert any(name.startswith("model/stages/") for name in model_files)
    assert indexed(Registry(root, MODEL).load_model(1), frame) == indexed(model, frame)  # again, from the cache folder


def test_a_tampered_model_file_is_detected_on_load(root, backend, tiny_model):
    registry = saved_version(root, tiny_model)
    [data_file] = [key for key in backend.keys("versions/1/model/stages") if key.endswith(".parquet")]
    backend.write(data_file, backend.read(data_file) + b"tampered")

    with pytest.raises(InputError, match=f"version 1 is corrupted: {data_file.removeprefix('versions/1/')} does not "
                                         "match its recorded sha256"):
        registry.load_model(1)


def test_a_half_written_model_is_refused_on_load(root, backend, tiny_model):
    registry = saved_version(root, tiny_model)
    [part] = [key for key in backend.keys("versions/1/model/metadata") if key.rsplit("/", 1)[-1].startswith("part-")]
    backend.delete(part)

    with pytest.raises(InputError, match=f"version 1 is half-written: {part.removeprefix('versions/1/')} is recorded "
                                         "but missing"):
        registry.load_model(1)


def test_a_version_without_metadata_does_not_load(root, tiny_model):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    registry.save_model(version, tiny_model[0])  # training stopped before writing the metadata

    with pytest.raises(InputError, match="version 1 is missing or incomplete"):
        registry.load_model(version)


def test_a_retried_save_replaces_an_unsealed_model_but_a_complete_version_is_immutable(root, backend, tiny_model):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    registry.save_model(version, tiny_model[0])
    registry.save_model(version, tiny_model[0])  # the retry of an interrupted training
    registry.write_document(version, "metadata", {"version": version})

    recorded = {name for name in registry.manifest(version)["files"] if name.startswith("model/")}
    assert recorded == {key.removeprefix("versions/1/") for key in backend.keys("versions/1/model")}
    with pytest.raises(InputError, match="version 1 is complete .* and immutable: its model cannot be replaced"):
        registry.save_model(version, tiny_model[0])
    registry.load_model(version)


# --- the promote job: backfills and forced promotions ----------------------------------------------------------------


def candidate_run(root: str, lake_root: str, run_id: str, verdict: dict, tiny_model) -> int:
    registry = saved_version(root, tiny_model, run_id)
    version = registry.version_for_run(run_id)
    registry.write_document(version, "verdict", verdict)
    Lake(lake_root).write_run(run_id, "candidate", {"version": version, "model_name": MODEL})
    return version


def promote(run_id: str, root: str, lake_root: str, *extra: str) -> None:
    promote_model.main(["--run-id", run_id, "--lake-root", lake_root, "--registry-uri", root, *extra])


def test_a_backfill_run_does_not_promote_unless_allowed(root, lake_root, tiny_model, caplog):
    candidate_run(root, lake_root, "backfill__2026-11-20T00:00:00+00:00", passing_verdict(None), tiny_model)

    with caplog.at_level(logging.INFO, logger="promote_model"):
        promote("backfill__2026-11-20T00:00:00+00:00", root, lake_root, "--run-type", "backfill",
                "--promote-on-backfill", "False")

    assert Registry(root, MODEL).champion() is None
    assert "backfill run backfill__2026-11-20T00:00:00+00:00: version 1 (verdict PASSED) is not promoted" in caplog.text
    promote("backfill__2026-11-20T00:00:00+00:00", root, lake_root, "--run-type", "backfill",
            "--promote-on-backfill", "True")
    assert Registry(root, MODEL).champion_version() == 1


def test_the_job_forces_a_failed_verdict_only_with_a_reason(root, lake_root, tiny_model):
    candidate_run(root, lake_root, "manual__forced", failing_verdict(None), tiny_model)

    with pytest.raises(InputError, match="failed its gate, not promoted: FAIL min_accuracy.*--force-reason"):
        promote("manual__forced", root, lake_root, "--force-reason", " ")
    assert Registry(root, MODEL).champion() is None

    promote("manual__forced", root, lake_root, "--force-reason", "the test split is known to be mislabelled")

    [entry] = Registry(root, MODEL).history()
    assert (entry["to"], entry["kind"], entry["run_id"]) == (1, "forced", "manual__forced")
    assert entry["reason"] == "the test split is known to be mislabelled"


# --- command line -----------------------------------------------------------------------------------------------------


def cli(root: str, *argv: str) -> None:
    main(["--registry-uri", root, "--model-name", MODEL, *argv])


def test_cli_lists_shows_and_tells_the_champion_and_history(root, capsys):
    promoted_three_times(root)

    cli(root, "list")
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["version", "champion", "complete", "verdict", "accuracy", "files", "run_id",
                                  "created_at"]
    assert [line.split()[:4] for line in listing[1:]] == [["1", "True", "PASSED", "-"], ["2", "True", "PASSED", "-"],
                                                           ["3", "*", "True", "PASSED"]]
    cli(root, "show", "2")
    shown = capsys.readouterr().out
    assert shown.startswith(f"{MODEL} version 2\n") and "verdict:  PASSED" in shown
    assert "metadata.json" in shown and "verdict.json" in shown
    cli(root, "champion")
    assert capsys.readouterr().out.splitlines()[1].split()[:5] == ["3", "3", registry_at(root, 3), "promotion", "2"]
    cli(root, "history")
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["1", "2", "3"]


def registry_at(root: str, sequence: int) -> str:
    return Registry(root, MODEL).history()[sequence - 1]["at"]


def test_cli_json_output_is_the_registrys_records(root, capsys):
    registry = promoted_three_times(root)

    cli(root, "--json", "history")
    assert json.loads(capsys.readouterr().out) == registry.history()
    cli(root, "--json", "champion")
    assert json.loads(capsys.readouterr().out) == registry.champion()
    cli(root, "--json", "list")
    assert [row["version"] for row in json.loads(capsys.readouterr().out)] == [1, 2, 3]
    cli(root, "--json", "show", "1")
    assert json.loads(capsys.readouterr().out)["manifest"] == registry.manifest(1)


def test_cli_rolls_back_and_records_who_and_why(root, capsys):
    registry = promoted_three_times(root)

    cli(root, "rollback", "--reason", "version 3 mislabels beaches")
    assert capsys.readouterr().out.strip() == f"champion of {MODEL} rolled back from version 3 to 2"
    cli(root, "--json", "rollback", "--to", "1", "--reason", "back to the first")

    assert json.loads(capsys.readouterr().out)["to"] == 1
    assert moves(registry)[-2:] == [(3, 2, "rollback"), (2, 1, "rollback")]
    assert registry.history()[-1]["user"]


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["rollback", "--to", "9", "--reason", "typo"], 1, "registry: error: image_classifier has no version 9"),
        (["show", "9"], 1, "registry: error: image_classifier has no version 9"),
        (["rollback", "--to", "2"], 2, "the following arguments are required: --reason"),
        (["rollback", "--to", "0", "--reason", "x"], 2, "'0' is not a positive integer"),
        (["promote"], 2, "invalid choice: 'promote'"),
    ],
)
def test_cli_bad_input_ends_with_one_line_and_a_non_zero_status(root, capsys, argv, status, message):
    promoted_three_times(root)

    with pytest.raises(SystemExit) as exit_:
        cli(root, *argv)

    error = capsys.readouterr().err
    assert exit_.value.code == status
    assert message in error and len(error.strip().splitlines()) == 1
