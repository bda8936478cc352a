"""Command-line plumbing shared by the Spark jobs: one-line errors and a non-zero exit for bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from imagepipe import params, settings
from imagepipe.errors import REFUSED, InputError


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


# argparse type of the registry CLI's version numbers (the jobs' run parameters carry their schemas: imagepipe.params)
POSITIVE_INT = checked(positive_int, "a positive integer")


def job_parser(prog: str, doc: str, run_help: str) -> JobArgumentParser:
    """The parser every job starts from: its description, the run it belongs to and the lake it works in."""
    parser = JobArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--run-id", required=True, help=f"Airflow run id; {run_help}")
    parser.add_argument("--lake-root", default=settings.lake_root(), help="lake root URI (default: %(default)s)")
    return parser


def add_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry-uri", default=None,
        help="registry root, s3://bucket/prefix or a path "
             "(default: $IMAGEPIPE_REGISTRY_URI, else <lake root>/registry)",
    )


def add_model_name(parser: argparse.ArgumentParser) -> None:
    """The registry model a job works on, and where the registry is."""
    params.MODEL_NAME.add_to(parser)
    add_registry(parser)


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
