"""The trigger forms: each run parameter's declaration (imagepipe.params) as an Airflow Param, the form field the
job's own check (run_param.schema_error) refuses the same values with."""

from __future__ import annotations

from dataclasses import replace

from imagepipe import run_param
from imagepipe.params import Job, form_fields
from imagepipe.run_param import REQUIRED, RunParam


def field(param: RunParam):
    """The trigger form's field of one declaration."""
    from airflow.sdk import Param

    default = param.default_value()
    return Param(**({} if default is REQUIRED else {"default": default}), title=param.title,
                 description=param.description, **run_param.DIALECT, **param.schema)


def dag_params(*parts: RunParam | Job, defaults: dict | None = None) -> dict:
    """A DAG's trigger form: the given declarations and the params of the given jobs, in order, each once, with the
    given `defaults` (a dataset's, by field name) in place of the declared ones."""
    defaults = defaults or {}
    return {name: field(replace(param, default=defaults[name]) if name in defaults else param)
            for name, param in form_fields(*parts).items()}
