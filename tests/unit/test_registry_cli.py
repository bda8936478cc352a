"""python -m imagepipe.registry on a registry on a local path (tests/s3/test_registry_on_object_storage.py runs it
on S3 too)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imagepipe.registry import Registry
from imagepipe.registry.cli import main
from unit.registry_helpers import *  # noqa: F403 (the fixtures backend, root)
from unit.registry_helpers import MODEL, moves, promoted_three_times


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
    return Registry(root, MODEL).history()[sequence - 1].at


def test_cli_json_output_is_the_registrys_records(root, capsys):
    registry = promoted_three_times(root)

    cli(root, "--json", "history")
    assert json.loads(capsys.readouterr().out) == [entry.to_json() for entry in registry.history()]
    cli(root, "--json", "champion")
    assert json.loads(capsys.readouterr().out) == registry.champion().to_json()
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
    assert registry.history()[-1].user


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["rollback", "--to", "9", "--reason", "typo"], 2, "registry: error: image_classifier has no version 9"),
        (["show", "9"], 2, "registry: error: image_classifier has no version 9"),
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



def test_python_dash_m_runs_the_command_line(root):
    registry = promoted_three_times(root)

    shown = subprocess.run([sys.executable, "-m", "imagepipe.registry", "--registry-uri", root, "--json", "champion"],
                           capture_output=True, text=True, check=True)

    assert json.loads(shown.stdout) == registry.champion().to_json()


def test_show_prints_the_lake_snapshot_each_table_was_read_at_for_training_and_evaluation(root, capsys):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-lineage")
    registry.write_document(version, "metadata", {"version": version, "snapshots": {
        "imagepipe.`default`.`images`": 11, "imagepipe.`default`.`features_resnet18_0a`": 12}})
    registry.write_document(version, "metrics", {"snapshots": {"imagepipe.`default`.`features_resnet18_0a`": 13}})

    cli(root, "show", str(version))

    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith(("trained:", "evaluated:"))] == [
        "trained:   imagepipe.`default`.`features_resnet18_0a` snapshot 12",
        "trained:   imagepipe.`default`.`images` snapshot 11",
        "evaluated: imagepipe.`default`.`features_resnet18_0a` snapshot 13",
    ]
