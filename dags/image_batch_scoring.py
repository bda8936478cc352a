"""
### Image batch scoring

Labels a prefix of unlabelled images with the image classifier's champion and writes the predictions to the lake.
Runs whenever the pipeline (or a rollback) changes the champion, through the `imagepipe_champion_image_classifier`
asset, and whenever triggered by hand with the form below.

| task | Spark job | writes |
|---|---|---|
| score | `spark_jobs/score_images.py` | `predictions/<model>/run_id=<run>/` (Parquet), `runs/<run>/scoring.json` |

Each object under `source_uri` (optionally only those modified in [`window_start`, `window_end`)) gets one row: key,
etag, sha256, predicted_label, probability (null for models without probabilities), model name and version, feature
fingerprint and run id; an object that is not a usable image gets its reason instead of a label. The images are
featurised in the champion's own feature space (backbone, weights, size, preprocessing). A re-run of the same run
replaces its own predictions; other runs' stay. Asset-triggered runs take the form's defaults
(`IMAGEPIPE_SCORING_URI`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG

from imagepipe import assets, orchestration, params, settings
from imagepipe.job_operators import SparkJobOperator

LAKE_ROOT = settings.lake_root()
REGISTRY_URI = settings.registry_uri(LAKE_ROOT)
MODEL_NAME = settings.DEFAULT_MODEL_NAME
JOB = settings.spark_jobs_dir() / "score_images.py"

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=[assets.champion(REGISTRY_URI, MODEL_NAME)],  # a new champion; manual triggers work as well
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["imagepipe", "spark", "ml", "scoring"],
    default_args=orchestration.task_defaults(execution_timeout=timedelta(hours=2)),
    user_defined_macros={"s3_endpoint_url": orchestration.s3_endpoint_url},
    params=params.dag_params(params.SCORE),
) as dag:
    SparkJobOperator(
        task_id="score",
        application=str(JOB),
        name="imagepipe-score_images",
        conn_id="spark_default",
        application_args=[
            "--run-id", "{{ run_id }}", "--lake-root", LAKE_ROOT, "--registry-uri", REGISTRY_URI,
            "--endpoint-url", "{{ s3_endpoint_url() }}", *params.SCORE.arguments(),
        ],
        doc_md=orchestration.job_doc(JOB),
        outlets=[assets.predictions(LAKE_ROOT, MODEL_NAME)],
    )
