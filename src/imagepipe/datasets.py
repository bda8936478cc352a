"""Datasets: named collections of labelled images, each with its own source, schedule, lake tables, registry model,
assets and run defaults. They are declared in one file (dags/datasets.toml, or IMAGEPIPE_DATASETS_FILE) and checked
here, each mistake refused in one line that names the entry:

    [datasets.holiday]
    source_uri = "s3://my-photos/holiday/"
    schedule = "0 3 * * *"
    [datasets.holiday.defaults]        # the run's defaults: any field of the pipeline's trigger form
    image_size = 64

The dataset named `default` is the lake and registry as they were before datasets existed: its tables stay at the
lake's root, its model keeps its name, its DAGs keep their ids. Every other dataset lives under
`<lake>/datasets/<name>/`, with a registry model of its own name. Light: standard library, tomllib and jsonschema.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from imagepipe import settings
from imagepipe.errors import InputError

DEFAULT = "default"
# A dataset's name becomes part of DAG ids, asset URIs, a registry model's name and a lake folder.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
SCHEDULE_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "none"}
KEYS = {"source_uri", "label_manifest", "schedule", "scoring_uri", "defaults"}


@dataclass(frozen=True)
class Dataset:
    name: str
    source_uri: str
    schedule: str = "0 0 * * *"
    label_manifest: str | None = None
    scoring_uri: str | None = None
    defaults: dict = field(default_factory=dict)  # trigger-form field -> the dataset's default value

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    def suffixed(self, base: str) -> str:
        """A per-dataset name (DAG id, ...): the base for the default dataset, base__<name> for the others."""
        return base if self.is_default else f"{base}__{self.name}"

    @property
    def model_name(self) -> str:
        return settings.DEFAULT_MODEL_NAME if self.is_default else self.name

    def lake_root(self, root: str) -> str:
        from imagepipe import storage

        return root if self.is_default else storage.join(root, "datasets", self.name)


def datasets_file() -> Path:
    return Path(os.environ.get("IMAGEPIPE_DATASETS_FILE", settings.PROJECT_ROOT / "dags" / "datasets.toml"))


def load(path: Path | None = None) -> list[Dataset]:
    """The declared datasets, in the file's order; InputError with one line naming the first mistake."""
    path = path or datasets_file()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no datasets file; declare at least one dataset (see README, Datasets)") from None
    except tomllib.TOMLDecodeError as error:  # a dataset declared twice is one: "Cannot declare (...) twice"
        raise InputError(f"{path}: {error}") from None
    unknown = sorted(set(document) - {"datasets"})
    if unknown:
        raise InputError(f"{path}: unknown top-level key {unknown[0]!r}; datasets go under [datasets.<name>]")
    entries = document.get("datasets", {})
    if not entries:
        raise InputError(f"{path}: no dataset declared; add a [datasets.<name>] table")
    return [check_entry(name, entry, path) for name, entry in entries.items()]


def check_entry(name: str, entry, path: Path | str) -> Dataset:
    """One [datasets.<name>] table as a Dataset, or InputError naming the entry and what is wrong with it."""
    from imagepipe import params
    from imagepipe.run_param import schema_error

    where = f"{path}: dataset {name!r}"
    if not re.fullmatch(NAME_PATTERN, name):
        raise InputError(f"{where}: a name is 1 to 40 lower-case letters, digits and _, starting with a letter")
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
    return Dataset(name, entry["source_uri"], schedule, entry.get("label_manifest"), entry.get("scoring_uri"),
                   dict(defaults))


# Form fields a dataset sets as its own keys, not as run defaults.
DATASET_FIELDS = {"source_uri", "label_manifest"}


def valid_schedule(schedule: str) -> bool:
    if schedule in SCHEDULE_PRESETS:
        return True
    from croniter import croniter

    return croniter.is_valid(schedule)
