"""Datasets: named collections of labelled images, each with its own source, schedule, lake tables, registry model,
assets, DAGs and run defaults.

The `default` dataset is always there and is the lake and registry as they were before datasets existed: its tables
stay at the lake's root, its model keeps its name, its DAGs keep their ids, and the environment gives its source,
schedule, scoring prefix and subscriptions (IMAGEPIPE_SOURCE_URI, IMAGEPIPE_SCHEDULE, IMAGEPIPE_SCORING_URI,
IMAGEPIPE_NOTIFY_<EVENT>). The demo runs on it.
Every other dataset is declared in one file (dags/datasets.toml, or IMAGEPIPE_DATASETS_FILE), lives under
`<lake>/datasets/<name>/` and has a registry model of its own name:

    [datasets.holiday]
    source_uri = "s3://my-photos/holiday/"
    schedule = "0 3 * * *"               # cron (UTC), @hourly .. @yearly, or none (manual runs only)
    scoring_uri = "s3://my-photos/inbox/"  # optional: what its batch scoring labels when the champion changes
    retrain_on_drift = true              # optional: its pipeline also runs on its batch scoring's drift alarms
    [datasets.holiday.defaults]          # optional: the run's defaults, any field of the pipeline's trigger form
    image_size = 64
    [datasets.holiday.notify]            # optional: who hears what (imagepipe.subscriptions), by connection
    gate_failed = ["email:ml-team@example.com"]
    champion_change = ["webhook:deploy_hook"]

Each mistake is refused in one line that names the entry. `python -m imagepipe.datasets add NAME --source-uri URI`
appends a checked entry. Light: standard library, tomllib and jsonschema; DAG files read it at parse.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from imagepipe import settings
from imagepipe.errors import REFUSED, InputError

DEFAULT = "default"
# A dataset's name becomes part of DAG ids, asset names, a registry model's name and a lake folder.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
SCHEDULE_PRESETS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "none"}
KEYS = {"source_uri", "label_manifest", "schedule", "scoring_uri", "defaults", "notify", "retrain_on_drift"}
# Form fields a dataset sets as its own keys, not as run defaults.
DATASET_FIELDS = {"source_uri", "label_manifest"}


@dataclass(frozen=True)
class Dataset:
    name: str
    source_uri: str
    schedule: str = "0 0 * * *"
    label_manifest: str | None = None
    scoring_uri: str | None = None
    defaults: dict = field(default_factory=dict)  # trigger-form field -> the dataset's default value
    notify: dict = field(default_factory=dict)  # event -> its notification targets (imagepipe.subscriptions)
    retrain_on_drift: bool = False  # its pipeline also runs on each drift alarm of its batch scoring

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    def suffixed(self, base: str) -> str:
        """A per-dataset name (DAG id, asset name): the base for the default dataset, base__<name> for the others."""
        return base if self.is_default else f"{base}__{self.name}"

    @property
    def model_name(self) -> str:
        return settings.DEFAULT_MODEL_NAME if self.is_default else self.name

    def lake_root(self, root: str | None = None) -> str:
        from imagepipe import storage

        root = root or settings.lake_root()
        return root if self.is_default else storage.join(root, "datasets", self.name)

    def form_defaults(self) -> dict:
        """The pipeline form's defaults this dataset changes (the default dataset's come from the environment)."""
        if self.is_default:
            return {}
        own = {"source_uri": self.source_uri, "label_manifest": self.label_manifest}
        return {**{key: value for key, value in own.items() if value is not None}, **self.defaults}


def default_dataset() -> Dataset:
    from imagepipe.subscriptions import environment_subscriptions

    return Dataset(DEFAULT, settings.default_source_uri(), settings.schedule(), None, settings.default_scoring_uri(),
                   notify=environment_subscriptions(), retrain_on_drift=settings.retrain_on_drift())


def datasets_file() -> Path:
    return Path(os.environ.get("IMAGEPIPE_DATASETS_FILE", settings.PROJECT_ROOT / "dags" / "datasets.toml"))


def load(path: Path | None = None) -> list[Dataset]:
    """The default dataset, then the declared ones in the file's order; InputError with one line naming the first
    mistake. No file, or a file declaring none, is the default dataset alone."""
    path = path or datasets_file()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        document = {}
    except tomllib.TOMLDecodeError as error:  # a dataset declared twice is one: "Cannot declare (...) twice"
        raise InputError(f"{path}: {error}") from None
    unknown = sorted(set(document) - {"datasets"})
    if unknown:
        raise InputError(f"{path}: unknown top-level key {unknown[0]!r}; datasets go under [datasets.<name>]")
    declared = document.get("datasets", {})
    return [default_dataset(), *(check_entry(name, entry, path) for name, entry in declared.items())]


def named(name: str, path: Path | None = None) -> Dataset:
    for dataset in load(path):
        if dataset.name == name:
            return dataset
    raise InputError(f"no dataset named {name!r} in {path or datasets_file()}; add it with "
                     f"`python -m imagepipe.datasets add {name} --source-uri s3://<bucket>/<prefix>/`")


def of_dag(dag_id: str, dag_id_base: str) -> Dataset | None:
    """The dataset whose DAG of the given kind (`dag_id_base`) this is, if any."""
    return next((dataset for dataset in load() if dataset.suffixed(dag_id_base) == dag_id), None)


def by_model() -> dict[str, Dataset]:
    """Every dataset by its registry model's name, from one reading of the file."""
    return {dataset.model_name: dataset for dataset in load()}


def of_model(model_name: str) -> Dataset | None:
    """The dataset whose registry model this is, if any (a model trained by hand may belong to none)."""
    return by_model().get(model_name)


def check_entry(name: str, entry, path: Path | str) -> Dataset:
    """One [datasets.<name>] table as a Dataset, or InputError naming the entry and what is wrong with it."""
    from imagepipe import params
    from imagepipe.run_param import schema_error
    from imagepipe.subscriptions import subscriptions

    where = f"{path}: dataset {name!r}"
    if name == DEFAULT:
        raise InputError(f"{where}: the default dataset is not declared here; IMAGEPIPE_SOURCE_URI, "
                         "IMAGEPIPE_SCHEDULE and IMAGEPIPE_SCORING_URI set it")
    if not re.fullmatch(NAME_PATTERN, name) or name == settings.DEFAULT_MODEL_NAME:
        raise InputError(f"{where}: a name is 1 to 40 lower-case letters, digits and _, starting with a letter, "
                         f"and not {settings.DEFAULT_MODEL_NAME!r} (the default dataset's model)")
    if not isinstance(entry, dict):
        raise InputError(f"{where}: give a table of settings, [datasets.{name}]")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(KEYS))}")
    if "source_uri" not in entry:
        raise InputError(f"{where}: source_uri is missing; give the S3 prefix of its labelled images")
    for key, param in (("source_uri", params.SOURCE_URI), ("label_manifest", params.LABEL_MANIFEST),
                       ("scoring_uri", params.SCORING_SOURCE_URI)):
        if key in entry and (message := schema_error(entry[key], param.schema)):
            raise InputError(f"{where}: {key}: {message}")
    schedule = entry.get("schedule", Dataset.schedule)
    if not (isinstance(schedule, str) and valid_schedule(schedule)):
        raise InputError(f"{where}: schedule {schedule!r} is neither a cron expression (e.g. '0 3 * * *') nor one "
                         f"of {', '.join(sorted(SCHEDULE_PRESETS))}")
    defaults = entry.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InputError(f"{where}: defaults must be a table, [datasets.{name}.defaults]")
    form = params.form_fields(*params.PIPELINE_FORM)
    for key, value in defaults.items():
        if key not in form or key in DATASET_FIELDS:
            hint = (f"set it as the dataset's {key}" if key in DATASET_FIELDS
                    else "defaults are fields of the pipeline's trigger form")
            raise InputError(f"{where}: defaults: unknown field {key!r}; {hint}")
        if message := schema_error(value, form[key].schema):
            raise InputError(f"{where}: defaults: {key}: {message}")
    retrain_on_drift = entry.get("retrain_on_drift", False)
    if not isinstance(retrain_on_drift, bool):
        raise InputError(f"{where}: retrain_on_drift must be true or false, not {retrain_on_drift!r}")
    try:
        notify = subscriptions(entry.get("notify", {}))
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    return Dataset(name, entry["source_uri"], schedule, entry.get("label_manifest"), entry.get("scoring_uri"),
                   dict(defaults), notify, retrain_on_drift)


def valid_schedule(schedule: str) -> bool:
    if schedule in SCHEDULE_PRESETS:
        return True
    from croniter import croniter

    return croniter.is_valid(schedule)


def entry_text(name: str, source_uri: str, schedule: str | None, scoring_uri: str | None,
               label_manifest: str | None) -> str:
    """A [datasets.<name>] table in TOML (a JSON string is a TOML basic string)."""
    values = {"source_uri": source_uri, "schedule": schedule, "scoring_uri": scoring_uri,
              "label_manifest": label_manifest}
    lines = [f"[datasets.{name}]", *(f"{key} = {json.dumps(value)}" for key, value in values.items() if value)]
    return "\n".join(lines) + "\n"


def add(name: str, source_uri: str, schedule: str | None = None, scoring_uri: str | None = None,
        label_manifest: str | None = None, path: Path | None = None) -> Dataset:
    """Append a dataset to the file once the file with it passes every check; the file is left as it was otherwise."""
    path = path or datasets_file()
    before = path.read_text() if path.exists() else ""
    entry = entry_text(name, source_uri, schedule, scoring_uri, label_manifest)
    after = before + ("\n" if before and not before.endswith("\n\n") else "") + entry
    try:
        tomllib.loads(after)
    except tomllib.TOMLDecodeError:
        if name in {dataset.name for dataset in load(path)}:
            raise InputError(f"{path}: dataset {name!r} is already declared; pick another name") from None
        raise
    candidate = path.with_name(f".{path.name}.adding")
    candidate.write_text(after)
    try:
        added = [dataset for dataset in load(candidate) if dataset.name == name][-1]
    except InputError as error:
        raise InputError(str(error).replace(str(candidate), str(path))) from None
    finally:
        candidate.unlink()
    path.write_text(after)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imagepipe.datasets", description="The declared datasets.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="each dataset (or the one named) with its DAG, lake folder and model")
    listing.add_argument("name", nargs="?", help="refused unless declared")
    adding = commands.add_parser("add", help="declare a dataset (checked before it is written)")
    adding.add_argument("name")
    adding.add_argument("--source-uri", required=True, help="S3 prefix of its labelled images, <prefix>/<label>/<file>")
    adding.add_argument("--schedule", help="cron (UTC), @hourly .. @yearly or none; default: daily at midnight")
    adding.add_argument("--scoring-uri", help="S3 prefix its batch scoring labels when its champion changes")
    adding.add_argument("--label-manifest", help="CSV of key,label for images not under label folders")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "add":
            dataset = add(arguments.name, arguments.source_uri, arguments.schedule, arguments.scoring_uri,
                          arguments.label_manifest)
            print(f"dataset {dataset.name} added to {datasets_file()}: run it with "
                  f"`make run DATASET={dataset.name}` (DAG {dataset.suffixed('image_classifier_pipeline')})")
            return 0
        for dataset in [named(arguments.name)] if arguments.name else load():
            print(f"{dataset.name}\t{dataset.suffixed('image_classifier_pipeline')}\t{dataset.lake_root()}\t"
                  f"model {dataset.model_name}\t{dataset.source_uri}\t{dataset.schedule}")
        return 0
    except InputError as error:
        print(error, file=sys.stderr)
        return REFUSED


if __name__ == "__main__":
    sys.exit(main())
