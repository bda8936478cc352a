"""
### Image batch scoring

Labels a prefix of unlabelled images with a dataset's champion and writes the predictions to the dataset's lake
folder. Runs whenever the dataset's pipeline (or a rollback) changes its champion, through the
`imagepipe_champion_<model>` asset, and whenever triggered by hand with the form below. A dataset declared without a
`scoring_uri` is scored by hand only, on the prefix its run names.

| task | Spark job | writes |
|---|---|---|
| score | `spark_jobs/score_images.py` | table `predictions_<model>` (by `run_id`), drift figures in table `drift_<model>`, `runs/<run>/scoring.json` |
| drift_alarm | (reads the run's drift verdict) | the `imagepipe_drift_<model>` asset's event and the dataset's `drift` notice, only when a drift check alarmed |

Each object under `source_uri` (optionally only those modified in [`window_start`, `window_end`)) gets one row: key,
etag, sha256, predicted_label, probability (null for models without probabilities), model name and version, feature
fingerprint and run id; an object that is not a usable image gets its reason instead of a label. The images are
featurised in the champion's own feature space (backbone, weights, size, preprocessing). A re-run of the same run
replaces its own predictions; other runs' stay. Asset-triggered runs take the form's defaults (the dataset's
`scoring_uri`; `IMAGEPIPE_SCORING_URI` for the default dataset).

**Drift.** The score task compares the batch with the champion's reference (its held-out predictions and its train
split's features, stored with the version): the predicted-class mix, the top probability and the features, each as a
population stability index against the form's `drift_*` thresholds. When one crosses its threshold, drift_alarm
warns in its log, tells the dataset's `drift` subscribers and updates `imagepipe_drift_<model>`; otherwise it is
skipped, saying why. To retrain on an alarm, schedule the pipeline on that asset (see the README's drift section).
"""  # noqa: E501 (rows of the Markdown table above)

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, task

from imagepipe import datasets, lake, params, run_param
from imagepipe.airflow import assets, dag_shape, forms, macros, run_steps, task_guards
from imagepipe.airflow.job_operators import SparkJobOperator

REGISTRY_URI = lake.registry_uri()


def batch_scoring(dataset: datasets.Dataset) -> DAG:
    """The dataset's batch scoring: on its champion's changes when it names a scoring prefix, else by hand only."""
    lake_root = dataset.lake_root()
    champion = assets.champion(REGISTRY_URI, dataset.model_name)
    drift = assets.drift(lake_root, dataset.model_name)
    defaults = {} if dataset.is_default else {"model_name": dataset.model_name,
                                              "source_uri": dataset.scoring_uri or run_param.REQUIRED}
    with DAG(
        **dag_shape.dataset_dag(dataset, __file__, timedelta(hours=2)),
        description=f"dataset {dataset.name}: labels {dataset.scoring_uri or 'the prefix its run names'}",
        doc_md=__doc__,
        schedule=[champion] if dataset.scoring_uri else None,  # manual triggers work as well
        tags=["imagepipe", "spark", "ml", "scoring", f"dataset:{dataset.name}"],
        user_defined_macros={"s3_endpoint_url": macros.s3_endpoint_url},
        params=forms.dag_params(params.SCORE, defaults=defaults),
    ) as dag:
        score = SparkJobOperator(
            task_id="score",
            job=params.SCORE.name,
            name="imagepipe-score_images",
            conn_id="spark_default",
            application_args=[
                "--run-id", "{{ run_id }}", "--lake-root", lake_root, "--registry-uri", REGISTRY_URI,
                "--endpoint-url", "{{ s3_endpoint_url() }}", *params.SCORE.arguments(),
            ],
            doc_md=dag_shape.job_doc(params.SCORE.name),
            outlets=[assets.predictions(lake_root, dataset.model_name)],
        )

        @task(task_id="drift_alarm", outlets=[drift])
        @task_guards.refusals_fail_at_once
        def drift_alarm(run_id=None, params=None, outlet_events=None) -> dict:
            """Update the drift asset and tell the dataset's drift subscribers, only when the scoring run's drift
            crossed a threshold; skipped, sending no asset event, otherwise."""
            event = run_steps.drift_alarm(lake_root, run_id, params["model_name"], dataset.name)
            outlet_events[drift].extra = event
            return event

        score >> drift_alarm()
    return dag


for each in dag_shape.datasets_for_dag_file(Path(__file__).stem):
    batch_scoring(each)
