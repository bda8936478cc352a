"""
### Image classifier rollback

Makes an earlier version of the image classifier the champion again: by default the version that was champion
before the current one, or the version named in `target_version`. The rollback is a compare-and-swap promotion,
recorded in the promotion history as a rollback with the `reason` given here and the user who triggered it. The
target's files are checked against their recorded sha256 first: a corrupted or half-written version is refused and
the champion stays as it was. A rollback updates the `imagepipe_champion_image_classifier` asset, like a promotion.

The same from a shell: `python -m imagepipe.registry rollback [--to VERSION] --reason "..."`; see what is there with
`python -m imagepipe.registry history` and `list`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG, task

from imagepipe import assets, orchestration, params, settings

REGISTRY_URI = settings.registry_uri()
MODEL_NAME = settings.DEFAULT_MODEL_NAME
CHAMPION = assets.champion(REGISTRY_URI, MODEL_NAME)

log = logging.getLogger(__name__)

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=None,  # manual trigger only
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["imagepipe", "ml", "registry"],
    default_args=orchestration.task_defaults(execution_timeout=timedelta(minutes=15)),
    params=params.dag_params(*params.ROLLBACK),
) as dag:

    @task(task_id="rollback", outlets=[CHAMPION])
    @orchestration.refusals_fail_at_once
    def rollback(params=None, run_id=None, dag_run=None, outlet_events=None) -> dict:
        """Move the champion pointer back by compare-and-swap; a retry of a rollback that happened changes nothing.
        The champion asset is updated, so DAGs scheduled on it (image_batch_scoring) run with the restored model."""
        from imagepipe.registry import Registry

        entry = Registry(REGISTRY_URI, MODEL_NAME).rollback(
            params["reason"], to=params["target_version"], run_id=run_id, user=dag_run.triggering_user_name
        )
        log.info("champion of %s rolled back from version %s to version %s: %s", MODEL_NAME, entry["from"],
                 entry["to"], entry["reason"])
        outlet_events[CHAMPION].extra = orchestration.champion_event(entry, MODEL_NAME)
        return entry

    rollback()
