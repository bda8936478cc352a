"""Command-line plumbing shared by the Spark jobs: one-line errors and a non-zero exit for bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from imagepipe import settings
from imagepipe.errors import REFUSED, InputError
from imagepipe.object_store import parse_s3_uri


class JobArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line on stderr (not the usage block) and the refusal exit status."""

    def error(self, message: str):
        self.exit(REFUSED, f"{self.prog}: error: {message} (see --help)\n")


def checked(parse: Callable[[str], object], what: str) -> Callable[[str], object]:
    """An argparse type that turns parse's ValueError into a message naming the argument's expected form."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}: {error}") from None

    return convert


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def boolean(text: str) -> bool:
    """true/false in any case, as Airflow renders a boolean param (True/False)."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ValueError("use true or false")
    return value == "true"


def s3_uri(text: str) -> str:
    parse_s3_uri(text)
    return text


# argparse types for the jobs' numeric, boolean and S3 options
POSITIVE_INT = checked(positive_int, "a positive integer")
FRACTION = checked(fraction, "a fraction")
BOOLEAN = checked(boolean, "true or false")
S3_URI = checked(s3_uri, "an s3://bucket/prefix/ URI")


def optional(convert: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type where 'none' (any case; what Airflow renders for a null param) or '' means switched off."""
    return lambda text: None if text.strip().lower() in ("", "none") else convert(text)


def job_parser(prog: str, doc: str, run_help: str) -> JobArgumentParser:
    """The parser every job starts from: its description, the run it belongs to and the lake it works in."""
    parser = JobArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--run-id", required=True, help=f"Airflow run id; {run_help}")
    parser.add_argument("--lake-root", default=settings.lake_root(), help="lake root URI (default: %(default)s)")
    return parser


def add_model_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-name", default=settings.DEFAULT_MODEL_NAME, help="registry model name (default: %(default)s)")
    parser.add_argument(
        "--registry-uri", default=None,
        help="registry root, s3://bucket/prefix or a path (default: $IMAGEPIPE_REGISTRY_URI, else <lake root>/registry)",
    )


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a job's main; an InputError ends it with one line and the refusal exit status, which the Spark task turns
    into a failure without retries (a bug still shows its traceback, exits 1 and is retried)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    prog = (sys.argv[0].rsplit("/", 1)[-1]).removesuffix(".py")
    try:
        main(argv)
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(REFUSED)
