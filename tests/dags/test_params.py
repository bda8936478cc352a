"""Every param of every DAG, walked from the schema the trigger form has: a value just outside each of its bounds is
refused by the form (Param.resolve, as Airflow validates a trigger's conf) and by the Spark job the DAG hands the
param to (its parse_args, in-process), with the same message; the default passes both."""

from __future__ import annotations

import copy
import importlib
import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from imagepipe import params
from imagepipe.classifiers import CLASSIFIERS, TRANSFORM_PATTERN
from imagepipe.errors import REFUSED
from imagepipe.finetune.config import AUGMENTATION_PATTERN
from imagepipe.preprocessing import STEP_PATTERN
from imagepipe.run_param import ResolvedParam, without_long_list

DAGS = Path(__file__).resolve().parents[2] / "dags"
# Strings just outside each pattern of the forms.
PATTERN_MISSES = {
    params.S3_PREFIX_PATTERN: ["/local/images/", "s3://bucket", "https://bucket/images/"],
    params.MANIFEST_PATTERN: ["s3://bucket/labels.xlsx", "labels.csv"],
    params.WEIGHTS_PATTERN: ["random", "random:", "random:seven"],
    params.MODEL_NAME_PATTERN: ["../other", "-model"],
    params.MEMORY_PATTERN: ["2 GB", "0g", "512k"],
    params.SHA256_PATTERN: ["0" * 63, "A" * 64, "g" * 64],
    STEP_PATTERN: ["sharpen", "median", "median:1", "median:4", "median:17", "gaussian:0", "gaussian:10.5",
                   "autocontrast:2", ""],
    TRANSFORM_PATTERN: ["whiten", "pca", "pca:0", "normalizer:2"],
    AUGMENTATION_PATTERN: ["rotate:10", "horizontal_flip:1", "random_resized_crop", "random_resized_crop:0",
                           "random_resized_crop:1.5", "color_jitter:-0.1", ""],
}
# A value of each JSON type, the first one a schema's types do not allow is the wrong-type case.
OF_EACH_TYPE = ["text", 2.5, True, {"key": 1}]
# Params no job takes as an argument: the DAG reads them itself (window macros, the gate, Spark conf, the rollback).
READ_BY_THE_DAG = {
    "image_classifier_pipeline": {"require_new_images", "retrain_min_new_share", "executor_cores", "executor_memory",
                                  "shuffle_partitions", "force_promote", "force_reason"},
    "image_batch_scoring": set(),
    "image_classifier_rollback": {"target_version", "reason"},
    "image_forget": set(),
}
# DAGs whose defaults alone make no run: the form asks for the image to forget (its key or its sha256, a rule across
# two fields, which the job checks).
NO_RUN_WITHOUT_INPUT = {"image_forget"}
# What a manual run's job gets for a field its DAG resolves first (a ResolvedParam) when the form leaves it empty:
# the ingest window from where the last ingest ended to the moment of the trigger (the run's run_after below).
RESOLVED_DEFAULTS = {"window_start": "watermark", "window_end": datetime(2026, 11, 27, tzinfo=timezone.utc)}
# A valid value of each param the form requires (it has no default), for the runs that test another param.
REQUIRED_EXAMPLES = {"forget_reason": "the person in it asked"}


def out_of_bounds(schema: dict) -> list[tuple[str, object]]:
    """(the bound, a value just outside it) for every bound of a JSON Schema, those of its items and properties too."""
    from jsonschema import Draft7Validator

    cases = []
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    number = 1 if types and "integer" in types else 0.001
    for keyword, bound in schema.items():
        if keyword == "type":
            checker = Draft7Validator.TYPE_CHECKER
            cases.append(("type", next(v for v in OF_EACH_TYPE if not any(checker.is_type(v, t) for t in types))))
        elif keyword == "minimum":
            cases.append(("minimum", bound - number))
        elif keyword == "maximum":
            cases.append(("maximum", bound + number))
        elif keyword == "exclusiveMinimum":
            cases.append(("exclusiveMinimum", bound))
        elif keyword == "enum":
            cases.append(("enum", f"not_{bound[0]}"))
        elif keyword == "minLength":
            cases.append(("minLength", "x" * (bound - 1)))
        elif keyword == "maxLength":
            cases.append(("maxLength", "x" * (bound + 1)))
        elif keyword == "minItems":
            assert bound == 1, "an empty list is the only case made here"
            cases.append(("minItems", []))
        elif keyword == "pattern":
            assert bound in PATTERN_MISSES, f"no strings outside the pattern {bound} in PATTERN_MISSES"
            cases += [("pattern", text) for text in PATTERN_MISSES[bound]]
        elif keyword == "format":
            assert bound == "date-time"
            cases.append(("format", "yesterday"))
        elif keyword == "additionalProperties":
            assert bound is False
            cases.append(("additionalProperties", {"not_a_property": 1}))
        elif keyword == "properties":
            cases += [(f"{name}.{case}", {name: value}) for name, sub in bound.items()
                      for case, value in out_of_bounds(sub)]
        elif keyword == "items":
            cases += [(f"items.{case}", [value]) for case, value in out_of_bounds(bound)]
        else:
            assert keyword in ("title", "$schema"), f"no out-of-bounds case for the schema keyword {keyword}"
    return cases


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag


def is_arg_set(value) -> bool:
    from airflow.sdk.definitions._internal.types import is_arg_set

    return is_arg_set(value)


def form_message(param, value) -> str | None:
    """The message the trigger form refuses the value with (jsonschema's, through Param.resolve, without a list of
    thousands of accepted values, as make run shows it), or None."""
    from airflow.sdk.exceptions import ParamValidationError

    try:
        copy.deepcopy(param).resolve(value)
    except ParamValidationError as error:
        return without_long_list(error.args[0].message)
    return None


def job_arguments(dag, task, values: dict) -> list[str]:
    """The task's application_args as Airflow renders them for a manual run with these param values."""
    resolved = ({name: param.value for name, param in dag.params.items() if is_arg_set(param.value)}
                | {name: value for name, value in REQUIRED_EXAMPLES.items() if name in dag.params} | values)
    run = SimpleNamespace(run_type="manual", data_interval_start=None, data_interval_end=None,
                          triggering_user_name="admin", run_after=datetime(2026, 11, 27, tzinfo=timezone.utc))
    env = dag.get_template_env()
    return [env.from_string(arg).render(params=resolved, run_id="manual__params", dag_run=run,
                                        s3_endpoint_url=lambda: "")
            for arg in task.application_args]


def job_of(task) -> params.Job:
    """The declaration of the job a Spark task submits."""
    return next(value for value in vars(params).values() if isinstance(value, params.Job) and value.name == task.job)


def takers(dag, name: str) -> list[tuple[object, params.RunParam]]:
    """(task, the job's declaration) of every Spark task of the DAG whose job takes this param."""
    return [(task, param) for task in dag.tasks if hasattr(task, "job")
            for param in job_of(task).params if param.name == name]


@pytest.mark.parametrize("dag_id", sorted(READ_BY_THE_DAG))
def test_every_value_out_of_a_bound_is_refused_by_the_form_and_the_job_with_the_same_message(bag, dag_id, capsys):
    dag = bag.dags[dag_id]
    problems, checked_by_a_job = [], set()
    for name, param in dag.params.items():
        cases = out_of_bounds(param.schema)
        assert cases, f"{dag_id}.{name} has no bound"
        for case, value in cases:
            where = f"{dag_id}.{name} {case} {value!r}"
            message = form_message(param, value)
            if message is None:
                problems.append(f"{where}: the form accepts it")
                continue
            for task, declaration in takers(dag, name):
                job = job_of(task).name
                arguments = job_arguments(dag, task, {name: value})
                [text] = [arg.split("=", 1)[1] for arg in arguments if arg.startswith(f"{declaration.option}=")]
                if json.dumps(declaration.from_text(text)) != json.dumps(value):
                    continue  # not a value a command line can tell apart: the number 2.5 as a model name is "2.5"
                try:
                    importlib.import_module(f"spark_jobs.{job}").parse_args(arguments)
                except SystemExit as exit_:
                    status, lines = exit_.code, capsys.readouterr().err.splitlines()
                else:
                    status, lines = 0, []
                checked_by_a_job.add(name)
                # One line, the form's message after the option, then where in the value and the --help hint.
                said = f"{job}: error: argument {declaration.option}: {message} ("
                if status != REFUSED or len(lines) != 1 or not lines[0].startswith(said):
                    problems.append(f"{where}: the form says {message!r}, {job} exits {status} saying {lines}")
    assert problems == []
    assert checked_by_a_job == {name for name in dag.params if takers(dag, name)}


@pytest.mark.parametrize("dag_id", sorted(set(READ_BY_THE_DAG) - NO_RUN_WITHOUT_INPUT))
def test_every_default_passes_the_form_and_reaches_its_job_unchanged(bag, dag_id):
    dag = bag.dags[dag_id]
    handed = set()
    for name, param in dag.params.items():
        if not is_arg_set(param.value):  # no default: the form asks for it
            assert form_message(param, None) is not None, f"{dag_id}.{name}"
            continue
        assert form_message(param, param.value) is None, f"{dag_id}.{name}"
        for task, declaration in takers(dag, name):
            job = job_of(task).name
            # The task writes the run's value the way the job reads it.
            assert declaration.argument() in task.application_args, f"{task.task_id} does not hand {name} to {job}"
            args = importlib.import_module(f"spark_jobs.{job}").parse_args(job_arguments(dag, task, {}))
            expected = RESOLVED_DEFAULTS[name] if isinstance(declaration, ResolvedParam) else param.value
            assert getattr(args, name) == expected, f"{dag_id}.{name} in {job}"
            handed.add(name)
    assert set(dag.params) - handed == READ_BY_THE_DAG[dag_id]


@pytest.mark.parametrize("classifier", sorted(CLASSIFIERS))
def test_each_classifiers_default_hyperparameters_pass_the_form_and_the_train_job(bag, classifier):
    from spark_jobs import train_classifier

    dag = bag.dags["image_classifier_pipeline"]
    defaults = CLASSIFIERS[classifier].defaults
    assert form_message(dag.params.get_param("hyperparameters"), defaults) is None

    args = train_classifier.parse_args(job_arguments(dag, dag.get_task("train"),
                                                     {"classifier": classifier, "hyperparameters": defaults}))
    assert (args.classifier, args.hyperparameters) == (classifier, defaults)
