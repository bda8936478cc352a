import argparse
import sys

import pytest

from imagepipe import cli, params
from imagepipe.errors import InputError, MissingRecordError


def job_parser() -> cli.JobArgumentParser:
    parser = cli.JobArgumentParser(prog="train_classifier")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--max-iter", type=cli.checked(cli.positive_int, "a positive integer"), default=100)
    params.RunParam("min_accuracy", 0.5, {"type": ["null", "number"], "minimum": 0, "maximum": 1}, "Min accuracy",
                    "lowest test accuracy").add_to(parser)
    return parser


def stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_good_arguments_parse():
    args = job_parser().parse_args(["--run-id", "r1", "--max-iter", "20", "--min-accuracy", "0.75"])

    assert (args.run_id, args.max_iter, args.min_accuracy) == ("r1", 20, 0.75)


@pytest.mark.parametrize(
    "argv, expected_line",
    [
        (
            ["--run-id", "r1", "--max-iter", "0"],
            "train_classifier: error: argument --max-iter: '0' is not a positive integer: must be > 0 (see --help)",
        ),
        (
            ["--run-id", "r1", "--max-iter", "ten"],
            "train_classifier: error: argument --max-iter: 'ten' is not a positive integer: "
            "invalid literal for int() with base 10: 'ten' (see --help)",
        ),
        (
            ["--run-id", "r1", "--min-accuracy", "1.5"],
            # jsonschema's message, the one the trigger form gives
            "train_classifier: error: argument --min-accuracy: 1.5 is greater than the maximum of 1 (see --help)",
        ),
        (
            [],
            "train_classifier: error: the following arguments are required: --run-id (see --help)",
        ),
        (
            ["--run-id", "r1", "--no-such-flag"],
            "train_classifier: error: unrecognized arguments: --no-such-flag (see --help)",
        ),
    ],
)
def test_bad_argument_exits_2_with_one_line_on_stderr(capsys, argv, expected_line):
    with pytest.raises(SystemExit) as exit_info:
        job_parser().parse_args(argv)

    assert exit_info.value.code == 2
    assert stderr_lines(capsys) == [expected_line]


def test_job_reported_error_exits_2_with_one_line(capsys):
    # Jobs call parser.error themselves for checks across arguments.
    with pytest.raises(SystemExit) as exit_info:
        job_parser().error("--min-side 500 is above --max-side 100")

    assert exit_info.value.code == 2
    assert stderr_lines(capsys) == ["train_classifier: error: --min-side 500 is above --max-side 100 (see --help)"]


@pytest.mark.parametrize("text, value", [("1", 1), ("64", 64), (" 7 ", 7)])
def test_positive_int_accepts_positive_integers(text, value):
    assert cli.positive_int(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "x"])
def test_positive_int_refuses_others(text):
    with pytest.raises(ValueError):
        cli.positive_int(text)


def test_checked_turns_value_errors_into_argument_type_errors():
    convert = cli.checked(cli.positive_int, "a positive integer")

    assert convert("5") == 5
    with pytest.raises(argparse.ArgumentTypeError, match="^'-1' is not a positive integer: must be > 0$"):
        convert("-1")


@pytest.mark.parametrize(
    "argv, error, line",
    [
        (["/opt/spark_jobs/promote_model.py", "--run-id", "r1"], InputError("champion moved; re-run the evaluation"),
         "promote_model: error: champion moved; re-run the evaluation"),
        # A missing record is reported like any input error.
        (["evaluate_model.py"], MissingRecordError("run r1 has no candidate record"),
         "evaluate_model: error: run r1 has no candidate record"),
    ],
)
def test_run_reports_input_error_in_one_line_and_exits_with_the_refusal_status(capsys, monkeypatch, argv, error, line):
    monkeypatch.setattr(sys, "argv", argv)

    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main)

    assert exit_info.value.code == 2
    assert stderr_lines(capsys) == [line]


def test_run_passes_argv_to_main_and_returns_normally():
    received = []

    assert cli.run(received.append, ["--run-id", "r1"]) is None
    assert received == [["--run-id", "r1"]]


def test_run_lets_bugs_show_their_traceback():
    def main(argv):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        cli.run(main, [])
