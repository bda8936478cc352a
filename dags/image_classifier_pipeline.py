"""
### Image classifier pipeline

Ingests the images of one window from S3-compatible storage, optionally fine-tunes the CNN backbone on them,
extracts CNN features, trains a Spark MLlib classifier, evaluates it against the current champion on the same
held-out images, and promotes it when it passes.

| task | job | writes |
|---|---|---|
| ingest | `spark_jobs/ingest_images.py` | curated images, quarantine, ingest report |
| finetune_backbone | `spark_jobs/finetune_backbone.py` | fine-tuned backbone weights and the run's finetune record; skipped unless `finetune` is on |
| extract_features | `spark_jobs/extract_features.py` | feature vectors of the run's feature space (the fine-tuned weights' when `finetune` is on) |
| train | `spark_jobs/train_classifier.py` | a new model version in the registry |
| evaluate | `spark_jobs/evaluate_model.py` | metrics and verdict of that version |
| gate | (reads the verdict) | its decision (`runs/<run>/gate.json`); skips promotion, run still green, when a check failed (unless `force_promote`) |
| promote | `spark_jobs/promote_model.py` (no Spark work: run with the worker's Python) | champion pointer (compare-and-swap) and history; backfills keep the champion |
| publish_champion | (reads the champion pointer) | the champion asset's event, only if this run changed the champion |

**Window.** Scheduled and backfill runs take the objects whose LastModified lies in their data interval. Manual
runs take `window_start`/`window_end` from the trigger form; left empty, everything not ingested yet up to the
moment of the trigger. A window with no new images skips the rest of the run (green, with the reason in the
extract_features log) unless `require_new_images` is off.

**Retraining.** Each run trains by default. With `retrain_min_new_share` above 0, a run trains only when the images
new since the champion's training reach that share of the images it was trained on; below it the train task is
skipped, saying why, with evaluation and promotion, and the champion stays. Runs with no champion, another feature
space or other classifier settings than the champion's, or triggered by a drift alarm always train.

**Fine-tuning.** With the run's `finetune` param on, finetune_backbone trains the backbone from the `weights` param
on the lake's train split (chosen on validation, never on test) with the `finetune_*` params, and extract_features
takes its weights from the run's finetune record (refusing when there is none): a feature space of its own, which
train, evaluate, the gate and promotion use unchanged. A fine-tune of the same inputs is reused. Off (the default),
finetune_backbone is skipped, saying why, and extract_features runs on the `weights` param as they are; it never
runs after a failed fine-tune.

**Retraining on drift.** A dataset declared with `retrain_on_drift = true` (`IMAGEPIPE_RETRAIN_ON_DRIFT=true` for
the default one) also runs on each event of `imagepipe_drift_<model>`, which its batch scoring sends on a drift
alarm: the run ingests everything not ingested yet (like a manual run) and skips, green, when nothing new arrived.

**Assets.** ingest updates `imagepipe_curated_images`, extract_features `imagepipe_features`, and publish_champion
`imagepipe_champion_image_classifier` (extra: version, from, kind), which `image_batch_scoring` is scheduled on.
A skipped task updates nothing.

Spark master and deploy mode come from the `spark_default` connection, properties every job needs on the cluster
from `IMAGEPIPE_SPARK_CONF`, and each run's executor cores, memory and shuffle partitions from its params. Executors
get the imagepipe library as a --py-files archive built when the task starts. The object store's endpoint comes
from the `imagepipe_s3` connection's `endpoint_url` extra when it exists, else AWS_ENDPOINT_URL. On a cluster with
GPUs, `IMAGEPIPE_GPUS_PER_EXECUTOR` (and `IMAGEPIPE_GPUS_PER_TASK`, `IMAGEPIPE_GPU_DISCOVERY_SCRIPT`) give GPUs to
finetune_backbone and extract_features alone.
"""  # noqa: E501 (rows of the Markdown table above: a table row cannot wrap, and each of its notes is needed)

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, TriggerRule, task

from imagepipe import datasets, lake, params
from imagepipe.airflow import assets, dag_shape, forms, macros, run_steps, task_guards
from imagepipe.airflow.job_operators import LocalJobOperator, SparkJobOperator

# Per-run resources of every job; the operator adds the cluster's own properties (IMAGEPIPE_SPARK_CONF) under them
# and the GPUs over them when the task runs.
RESOURCES = {
    "spark.executor.cores": "{{ params.executor_cores }}",
    "spark.executor.memory": "{{ params.executor_memory }}",
    "spark.sql.shuffle.partitions": "{{ params.shuffle_partitions }}",
}


def pipeline(dataset: datasets.Dataset) -> DAG:
    """The dataset's pipeline DAG: its lake folder, registry model, assets, schedule and form defaults."""
    lake_root = dataset.lake_root()
    model_name = dataset.model_name
    registry_uri = lake.registry_uri()
    run = ["--run-id", "{{ run_id }}", "--lake-root", lake_root]
    model_run = [*run, "--model-name", model_name, "--registry-uri", registry_uri]
    curated_images = assets.curated_images(lake_root, dataset.name)
    features = assets.features(lake_root, dataset.name)
    champion = assets.champion(registry_uri, model_name)

    with DAG(
        **dag_shape.dataset_dag(dataset, __file__, timedelta(hours=2)),
        description=f"dataset {dataset.name}: {dataset.source_uri}",
        doc_md=__doc__,
        schedule=dag_shape.timetable(
            dataset.schedule, assets.drift(lake_root, model_name) if dataset.retrain_on_drift else None),
        tags=["imagepipe", "spark", "ml", f"dataset:{dataset.name}"],
        user_defined_macros={
            "window_start": macros.window_start,
            "run_type": macros.run_type,
            "window_end": macros.window_end,
            "s3_endpoint_url": macros.s3_endpoint_url,
        },
        params=forms.dag_params(*params.PIPELINE_FORM, defaults=dataset.form_defaults()),
    ) as dag:

        def spark_job(task_id: str, job: params.Job, args: list[str], **options) -> SparkJobOperator:
            """The job's task: its run plumbing (`args`), then the run's value of each of its params."""
            return SparkJobOperator(
                task_id=task_id,
                job=job.name,
                name=f"imagepipe-{job.name}",
                conn_id="spark_default",
                application_args=[*args, *job.arguments()],
                doc_md=dag_shape.job_doc(job.name),
                conf=RESOURCES,
                **options,
            )

        ingest = spark_job(
            "ingest",
            params.INGEST,
            [*run, "--endpoint-url", "{{ s3_endpoint_url() }}"],  # the window is one of the job's params
            outlets=[curated_images],
            # Ingest dedupes against the lake and extract fills the feature space's gaps: two runs doing either at
            # once (backfill runs are not held by the DAG's max_active_runs) could both take the same image.
            max_active_tis_per_dag=1,
        )
        finetune = spark_job(
            "finetune_backbone",
            params.FINETUNE,
            run,
            gpus=True,  # GPUs, where the cluster has them: one per TorchDistributor process
            pre_execute=functools.partial(task_guards.skip_unless_finetune, lake_root),
            # Two runs (backfills) fine-tuning the same inputs would write the same weights folder and checkpoint.
            max_active_tis_per_dag=1,
        )
        extract = spark_job(
            "extract_features",
            params.EXTRACT,  # its finetune argument makes it take the weights finetune_backbone wrote, or refuse
            run,
            gpus=True,  # GPUs, where the cluster has them
            pre_execute=functools.partial(task_guards.skip_without_new_images, lake_root),
            outlets=[features],
            max_active_tis_per_dag=1,
            trigger_rule=TriggerRule.NONE_FAILED,  # after finetune_backbone ran or was skipped, never after it failed
        )
        train = spark_job(
            "train",
            params.TRAIN,
            model_run,
            pre_execute=functools.partial(task_guards.skip_unless_retrain_due, lake_root, model_name, registry_uri),
        )
        evaluate = spark_job("evaluate", params.EVALUATE, model_run)

        @task.short_circuit(task_id="gate")
        @task_guards.refusals_fail_at_once
        def gate(run_id=None, params=None) -> bool:
            """Let promotion run only when every check of the candidate's verdict passed, or when the run forces it
            with a reason; the log names each check."""
            return run_steps.verdict_passed(lake_root, run_id, model_name, registry_uri, params["force_promote"],
                                                params["force_reason"], dataset.name)

        promote = LocalJobOperator(
            task_id="promote",
            job=params.PROMOTE.name,
            # A forced promotion is the gate's decision, which promote reads from the run's gate record.
            application_args=[*model_run, "--run-type", "{{ run_type(dag_run) }}", *params.PROMOTE.arguments()],
            doc_md=dag_shape.job_doc(params.PROMOTE.name),
        )

        @task(task_id="publish_champion", outlets=[champion])
        @task_guards.refusals_fail_at_once
        def publish_champion(run_id=None, outlet_events=None) -> None:
            """Update the champion asset, so DAGs scheduled on it (image_batch_scoring) run, only when this run's
            promotion changed the champion; skipped, sending no asset event, when the champion stayed (a backfill)."""
            outlet_events[champion].extra = run_steps.champion_change(lake_root, run_id, model_name, registry_uri,
                                                                          dataset.name)

        ingest >> finetune >> extract >> train >> evaluate >> gate() >> promote >> publish_champion()
    return dag


for each in dag_shape.datasets_for_dag_file(Path(__file__).stem):
    pipeline(each)
