"""
### Image forget

Removes one image from a dataset's lake, named by its object key or its sha256, with the reason: its rows leave
every table (images, quarantine, features and their errors, predictions), one commit per table; the lake's
`forgotten` table records who triggered it, when and why, with the model versions whose training read the image;
then every table's older snapshots are expired and its orphan files removed, so no file under the lake holds the
image's bytes any more. Nothing else is removed: the registry's versions, the run records and the source bucket's
object stay (remove the object from the bucket too, or a later ingest takes it again).

| task | Spark job | writes |
|---|---|---|
| forget | `spark_jobs/forget_image.py` | the dataset's tables, table `forgotten`, `runs/<run>/forget.json` |

It waits (retried) while a run of the dataset's pipeline or batch scoring is in progress. The same from a shell:
`make forget DATASET=<name> KEY=<object key> REASON="..."` (or `SHA256=<hex>`). Each dataset has its own
(`image_forget__<dataset>`).
"""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG

from imagepipe import datasets, lake, params
from imagepipe.airflow import dag_shape, forms, task_guards
from imagepipe.airflow.job_operators import SparkJobOperator


def forget_dag(dataset: datasets.Dataset) -> DAG:
    """The forgetting of one image of the dataset."""
    writers = [dataset.suffixed(name) for name in ("image_classifier_pipeline", "image_batch_scoring")]
    with DAG(
        **dag_shape.dataset_dag(dataset, __file__, timedelta(hours=1)),
        description=f"dataset {dataset.name}: forgets one image",
        doc_md=__doc__,
        schedule=None,  # manual trigger only
        tags=["imagepipe", "spark", "lake", f"dataset:{dataset.name}"],
        params=forms.dag_params(params.FORGET),
    ) as dag:
        SparkJobOperator(
            task_id="forget",
            job=params.FORGET.name,
            name=f"imagepipe-{params.FORGET.name}",
            conn_id="spark_default",
            application_args=[
                "--run-id", "{{ run_id }}", "--lake-root", dataset.lake_root(), "--model-name", dataset.model_name,
                "--registry-uri", lake.registry_uri(), "--requested-by", "{{ dag_run.triggering_user_name or '' }}",
                *params.FORGET.arguments(),
            ],
            doc_md=dag_shape.job_doc(params.FORGET.name),
            pre_execute=functools.partial(task_guards.no_lake_writer_running, writers),
        )
    return dag


for each in dag_shape.datasets_for_dag_file(Path(__file__).stem):
    forget_dag(each)
