"""
### Image classifier rollback

Makes an earlier version of a dataset's model the champion again: by default the version that was champion
before the current one, or the version named in `target_version`. The rollback is a compare-and-swap promotion,
recorded in the promotion history as a rollback with the `reason` given here and the user who triggered it. The
target's files are checked against their recorded sha256 first: a corrupted or half-written version is refused and
the champion stays as it was. A rollback updates the model's `imagepipe_champion_<model>` asset, like a promotion.

The same from a shell: `python -m imagepipe.registry rollback [--model-name MODEL] [--to VERSION] --reason "..."`;
see what is there with `python -m imagepipe.registry history` and `list`. Each dataset has its own rollback DAG
(`image_classifier_rollback__<dataset>`) for its own model.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, task

from imagepipe import datasets, lake, params
from imagepipe.airflow import assets, dag_shape, forms, run_steps, task_guards

REGISTRY_URI = lake.registry_uri()

log = logging.getLogger(__name__)


def rollback_dag(dataset: datasets.Dataset) -> DAG:
    """The rollback of the dataset's model."""
    model_name = dataset.model_name
    champion = assets.champion(REGISTRY_URI, model_name)
    with DAG(
        **dag_shape.dataset_dag(dataset, __file__, timedelta(minutes=15)),
        description=f"dataset {dataset.name}: rolls back model {model_name}",
        doc_md=__doc__,
        schedule=None,  # manual trigger only
        tags=["imagepipe", "ml", "registry", f"dataset:{dataset.name}"],
        params=forms.dag_params(*params.ROLLBACK),
    ) as dag:

        @task(task_id="rollback", outlets=[champion])
        @task_guards.refusals_fail_at_once
        def rollback(params=None, run_id=None, dag_run=None, outlet_events=None) -> dict:
            """Move the champion pointer back by compare-and-swap; a retry of a rollback that happened changes
            nothing. The champion asset is updated, so DAGs scheduled on it (batch scoring) run with the restored
            model, and the dataset's champion_change targets are told."""
            from imagepipe.airflow import notifications
            from imagepipe.registry import Registry

            entry = Registry(REGISTRY_URI, model_name).rollback(
                params["reason"], to=params["target_version"], run_id=run_id, user=dag_run.triggering_user_name
            )
            log.info("champion of %s rolled back from version %s to version %s: %s", model_name, entry.from_version,
                     entry.version, entry.reason)
            outlet_events[champion].extra = run_steps.champion_event(entry, model_name)
            notifications.send(notifications.champion_change(dataset.name, model_name, entry))
            return entry.to_json()

        rollback()
    return dag


for each in dag_shape.datasets_for_dag_file(Path(__file__).stem):
    rollback_dag(each)
