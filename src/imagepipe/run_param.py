"""A run parameter's declaration (RunParam) and a job's (Job): from one declaration come the trigger form's `Param`,
the job's command-line option (`add_to`) and the DAG's templated argument for the job (`RunParam.argument`).

The job checks each option's value with jsonschema against the very schema the form has, as Airflow's
`Param.resolve` does, so both refuse a value with the same message (e.g. "-1 is less than the minimum of 0").
On the command line a string is written as it is, a list of steps or transforms as a comma list
(`--preprocessing exif_transpose,median:3`), anything else as JSON; 'none' or '' is null where null is allowed.
A ResolvedParam is a form field the DAG turns into the job's value with a macro first (the ingest window, by run
type); its job option is declared with it. Light: standard library only; DAG files import it at parse.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from dataclasses import dataclass, field

REQUIRED = object()  # the default of a parameter the user must give
# Airflow checks every Param's schema against its dialect's meta-schema each time it builds a DAG; draft-07's check
# takes a third of the default 2020-12's (20 ms less per pipeline DAG, bench/dag_build.py); no schema here is newer.
DIALECT = {"$schema": "http://json-schema.org/draft-07/schema#"}


@dataclass(frozen=True)
class RunParam:
    name: str
    default: object  # a value, REQUIRED, or a callable reading it from the environment when a form or parser is built
    schema: dict
    title: str
    description: str

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def types(self) -> set[str]:
        kind = self.schema.get("type", "string")  # an enum of names
        return set(kind) if isinstance(kind, list) else {kind}

    @property
    def is_text(self) -> bool:
        return self.types <= {"string", "null"}

    @property
    def is_comma_list(self) -> bool:
        return self.types == {"array"} and self.schema["items"].get("type") == "string"

    def default_value(self):
        if self.default is REQUIRED:
            return REQUIRED
        return self.default() if callable(self.default) else copy.deepcopy(self.default)

    def argument(self) -> str:
        """The option with the template that writes the run's value, for a task's application_args: one word, so a
        value that starts with '-' is not taken for an option."""
        value = f"params.{self.name}"
        if self.is_comma_list:
            text = f"{{{{ {value} | join(',') }}}}"
        elif self.is_text:
            text = f"{{{{ {value} if {value} is not none else '' }}}}" if "null" in self.types else f"{{{{ {value} }}}}"
        else:
            text = f"{{{{ {value} | tojson }}}}"
        return f"{self.option}={text}"

    def from_text(self, text: str):
        """The value a command-line text stands for, not yet checked against the schema."""
        if "null" in self.types and text.strip().lower() in ("", "none"):
            return None
        if self.is_comma_list and not text.lstrip().startswith("["):
            items = [item.strip() for item in text.split(",")]
            return [] if items == [""] else items
        if self.is_text:
            return text
        if "boolean" in self.types and text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"  # any case: Python writes True
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except ValueError:
            return text  # not JSON: the schema names the type it should have been
        return int(value) if isinstance(value, float) and value.is_integer() and self.types == {"integer"} else value

    def option_default(self):
        """The job option's default: the form's."""
        return self.default_value()

    def check(self, value) -> str | None:
        """Why the job refuses the value (the form's message), or None."""
        return schema_error(value, self.schema)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        default = self.option_default()
        options = {"required": True} if default is REQUIRED else {"default": default}
        if self.types == {"boolean"}:
            options["nargs"], options["const"] = "?", True  # the bare flag means true
        shown = "" if default is REQUIRED else f" (default: {json.dumps(default)})"
        parser.add_argument(self.option, type=self._parse, dest=self.name, metavar=self.name.upper(),
                            help=f"{self.title}: {self.description}{shown}".replace("%", "%%"), **options)

    def _parse(self, text: str):
        value = self.from_text(text)
        message = self.check(value)
        if message:
            raise argparse.ArgumentTypeError(message)
        return value


@dataclass(frozen=True)
class ResolvedParam(RunParam):
    """A form field whose job option gets what a DAG macro makes of it and the run, `macro(dag_run, params)`: the
    ingest window, which scheduled runs take from their data interval and manual runs from the form or its default.
    The job checks the value against `job_schema` (with the form's message for a value of the wrong form), accepts
    the macro's `keywords` too (the window start's 'watermark'), and uses `job_default` when the option is left out,
    as in a run by hand."""

    macro: str = ""
    job_schema: dict = field(default_factory=dict)
    keywords: tuple[str, ...] = ()
    job_default: object = None

    def argument(self) -> str:
        return f"{self.option}={{{{ {self.macro}(dag_run, params) }}}}"

    def option_default(self):
        return self.job_default

    def check(self, value) -> str | None:
        return None if value in self.keywords else schema_error(value, self.job_schema)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


# jsonschema's message for a value outside an enum lists every accepted value: thousands for the backbones (timm's
# models). make run shortens the form's line the same way (its RUN_FAILURE).
LONG_LIST = re.compile(r" is not one of \[.{2000,}\]$")


def without_long_list(message: str) -> str:
    """jsonschema's message without a list of accepted values too long to read in one line."""
    return LONG_LIST.sub(" is not one of the values its trigger-form field lists", message)


def schema_error(value, schema: dict) -> str | None:
    """jsonschema's message for a value its schema refuses (the one Param.resolve raises), with where in the value
    when it is inside a list or an object; None when the value is valid."""
    from jsonschema import FormatChecker, ValidationError, validate

    try:
        validate(value, {**DIALECT, **schema}, format_checker=FormatChecker())
    except ValidationError as error:
        return without_long_list(error.message) + (f" (at {error.json_path})" if error.absolute_path else "")
    return None


@dataclass(frozen=True)
class Job:
    """A Spark job's parameters: `params` come from the run's trigger form, `options` are its own command-line tuning
    knobs with their defaults (the DAG does not pass them)."""

    name: str
    params: tuple[RunParam, ...]
    options: tuple[RunParam, ...] = ()

    def arguments(self) -> list[str]:
        return [param.argument() for param in self.params]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        for param in (*self.params, *self.options):
            param.add_to(parser)
