"""Every Spark job is a standalone program: --help works under python -m and as the script spark-submit runs, and a
bad argument gives one line on stderr and a non-zero exit."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from imagepipe.errors import REFUSED, InputError

PROJECT = Path(__file__).resolve().parents[2]
JOBS = ["ingest_images", "finetune_backbone", "extract_features", "train_classifier", "evaluate_model", "promote_model",
        "score_images"]
RUN = ["--run-id", "r"]
INGEST = [*RUN, "--window-end", "2026-01-01T00:00:00Z"]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=180)


def parse(job: str, argv: list[str]):
    return importlib.import_module(f"spark_jobs.{job}").parse_args(argv)


def refusal(job: str, argv: list[str], capsys) -> list[str]:
    """The job's stderr lines when it refuses these arguments at parse, after checking its exit status."""
    with pytest.raises(SystemExit) as exit_info:
        parse(job, argv)
    assert exit_info.value.code == REFUSED
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("job", JOBS)
def test_help_under_python_m(job):
    result = _run([sys.executable, "-m", f"spark_jobs.{job}", "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {job}")
    assert "--run-id" in result.stdout


@pytest.mark.parametrize("job", JOBS)
def test_help_as_the_script_spark_submit_runs(job):
    # spark-submit hands the job's file to Python as a script: its own folder, not the project, leads sys.path.
    result = _run([sys.executable, f"spark_jobs/{job}.py", "--help"])
    assert result.returncode == 0, result.stderr
    assert f"usage: {job}" in result.stdout


def test_help_under_spark_submit():
    # The launcher itself, once: the jobs differ only in the script it hands over, which the test above runs.
    spark_submit = Path(sys.executable).with_name("spark-submit")
    result = _run([str(spark_submit), "--master", "local[1]", "spark_jobs/promote_model.py", "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage: promote_model" in result.stdout


@pytest.mark.parametrize(
    "job, argv, line",
    [
        ("ingest_images", [*INGEST, "--source-uri", "http://not-s3/x"],
         "argument --source-uri: 'http://not-s3/x' does not match '^s3a?://[^/]+/.*$'"),
        ("extract_features", [*RUN, "--image-size", "8"], "argument --image-size: 8 is less than the minimum of 32"),
        ("train_classifier", [*RUN, "--hyperparameters", '{"reg_param": -1}'],
         "argument --hyperparameters: -1 is less than the minimum of 0 (at $.reg_param)"),
        ("train_classifier", [*RUN, "--feature-transforms", "standard_scaler,pca:0"],
         "argument --feature-transforms: 'pca:0' does not match '^(standard_scaler|normalizer|pca:[1-9][0-9]*)$' "
         "(at $[1])"),
        ("evaluate_model", [*RUN, "--min-accuracy", "1.5"],
         "argument --min-accuracy: 1.5 is greater than the maximum of 1"),
        ("evaluate_model", [*RUN, "--min-accuracy", "NaN"],
         "argument --min-accuracy: 'NaN' is not of type 'null', 'number'"),
        ("promote_model", [*RUN, "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        ("score_images", [*RUN, "--window-end", "yesterday"],
         "argument --window-end: 'yesterday' is not a 'date-time'"),
        # Rules across fields or items, which one field's schema cannot say.
        ("ingest_images", [*INGEST, "--min-side", "500", "--max-side", "100"],
         "--min-side 500 is above --max-side 100"),
        ("extract_features", [*RUN, "--backbone", "vit_b_16", "--image-size", "256"],
         "vit_b_16 takes 224-pixel inputs only; use image_size 224"),
        ("extract_features", [*RUN, "--preprocessing", "median:3,exif_transpose"],
         "preprocessing step 'exif_transpose' must come first, once: it reads the orientation the file was saved with"),
    ],
)
def test_a_bad_argument_is_refused_in_one_line_before_any_spark_work(capsys, job, argv, line):
    assert refusal(job, argv, capsys) == [f"{job}: error: {line} (see --help)"]


def test_promote_refuses_a_run_type_rendered_as_an_enum(capsys):
    assert refusal("promote_model", [*RUN, "--run-type", "DagRunType.BACKFILL"], capsys) == [
        "promote_model: error: argument --run-type: 'DagRunType.BACKFILL' is not an Airflow run type's name: "
        "give the plain lower-case name, e.g. backfill (see --help)"
    ]


def test_a_hyperparameter_the_classifier_does_not_take_is_refused_before_spark_starts():
    from spark_jobs import train_classifier

    with pytest.raises(InputError, match="hyperparameter num_trees does not apply to logistic_regression"):
        train_classifier.main([*RUN, "--hyperparameters", '{"num_trees": 10}'])


def test_the_command_line_forms_the_readme_shows(monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_SCORING_URI", "s3://inbox/new/")

    assert parse("extract_features", [*RUN, "--preprocessing", "exif_transpose,median:3"]).spec.steps == (
        "exif_transpose", "median:3")
    assert parse("extract_features", [*RUN, "--preprocessing", ""]).spec.steps == ()
    train = parse("train_classifier", [*RUN, "--classifier", "mlp", "--feature-transforms", "standard_scaler,pca:8",
                                       "--hyperparameters", '{"hidden_layers": [[64], [128, 32]]}'])
    assert (train.feature_transforms, train.hyperparameters) == (
        ["standard_scaler", "pca:8"], {"hidden_layers": [[64], [128, 32]]})
    # 'none' or nothing switches a gate check off
    evaluate = parse("evaluate_model", [*RUN, "--min-accuracy", "none", "--max-drop", "", "--min-gain", "0.01"])
    assert (evaluate.min_accuracy, evaluate.max_drop, evaluate.min_gain) == (None, None, 0.01)
    assert parse("ingest_images", [*INGEST, "--label-manifest", ""]).label_manifest is None
    assert parse("promote_model", [*RUN, "--promote-on-backfill"]).promote_on_backfill is True
    assert parse("promote_model", [*RUN, "--promote-on-backfill", "false"]).promote_on_backfill is False
    # A default that depends on the environment is read when the job starts.
    assert parse("score_images", RUN).source_uri == "s3://inbox/new/"


def test_missing_input_record_is_reported_in_one_line(tmp_path):
    result = _run([sys.executable, "-m", "spark_jobs.promote_model", "--run-id", "manual__x",
                   "--lake-root", str(tmp_path)])
    assert result.returncode == REFUSED  # a refusal: the task fails without retries
    assert result.stderr.strip().splitlines() == [
        f"promote_model: error: run manual__x has no candidate record in {tmp_path}; run the step that writes it first"
    ]
