"""Every Spark job is a standalone program: --help works under python -m and spark-submit, and a bad argument
gives one line on stderr and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
JOBS = ["ingest_images", "extract_features", "train_classifier", "evaluate_model", "promote_model", "score_images"]
BAD_ARGUMENTS = {
    "ingest_images": ["--source-uri", "http://not-s3/x", "--run-id", "r", "--window-end", "2026-01-01T00:00:00Z"],
    "extract_features": ["--run-id", "r", "--weights", "random"],
    "train_classifier": ["--run-id", "r", "--max-iter", "-3"],
    "evaluate_model": ["--run-id", "r", "--min-accuracy", "1.5"],
    "promote_model": ["--run-id", "r", "--no-such-flag"],
    "score_images": ["--run-id", "r", "--source-uri", "s3://inbox/new/", "--window-end", "yesterday"],
}


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("job", JOBS)
def test_help_under_python_m(job):
    result = _run([sys.executable, "-m", f"spark_jobs.{job}", "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {job}")
    assert "--run-id" in result.stdout


@pytest.mark.parametrize("job", JOBS)
def test_help_under_spark_submit(job):
    spark_submit = Path(sys.executable).with_name("spark-submit")
    result = _run([str(spark_submit), "--master", "local[1]", f"spark_jobs/{job}.py", "--help"])
    assert result.returncode == 0, result.stderr
    assert f"usage: {job}" in result.stdout


@pytest.mark.parametrize("job", JOBS)
def test_bad_argument_gives_one_line_and_a_nonzero_exit(job):
    result = _run([sys.executable, "-m", f"spark_jobs.{job}", *BAD_ARGUMENTS[job]])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{job}: error: ")


def test_missing_input_record_is_reported_in_one_line(tmp_path):
    result = _run([sys.executable, "-m", "spark_jobs.promote_model", "--run-id", "manual__x",
                   "--lake-root", str(tmp_path)])
    assert result.returncode == 2  # a refusal: the task fails without retries
    assert result.stderr.strip().splitlines() == [
        f"promote_model: error: run manual__x has no candidate record in {tmp_path}; run the step that writes it first"
    ]


def test_unknown_preprocessing_step_is_refused_in_one_line_naming_the_allowed_ones():
    result = _run([sys.executable, "-m", "spark_jobs.extract_features", "--run-id", "r",
                   "--preprocessing", "exif_transpose,sharpen"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "extract_features: error: unknown preprocessing step 'sharpen'; choose from exif_transpose, median:SIZE, "
        "gaussian:RADIUS, autocontrast, equalize, pad_to_square (see --help)"
    ]


def test_promote_refuses_a_run_type_rendered_as_an_enum():
    result = _run([sys.executable, "-m", "spark_jobs.promote_model", "--run-id", "backfill__x",
                   "--run-type", "DagRunType.BACKFILL"])

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "promote_model: error: argument --run-type: 'DagRunType.BACKFILL' is not an Airflow run type's name: "
        "give the plain lower-case name, e.g. backfill (see --help)"
    )
