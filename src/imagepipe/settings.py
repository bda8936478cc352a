"""Per-environment settings, read from environment variables with defaults for the embedded laptop stack."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_MODEL_NAME = "image_classifier"


def data_dir() -> Path:
    """Ignored folder holding everything the embedded stack writes (lake, Airflow home, S3 state)."""
    return Path(os.environ.get("IMAGEPIPE_DATA_DIR", PROJECT_ROOT / "data"))


def lake_root() -> str:
    """Root URI of the lake: a local path by default, s3a://bucket/prefix on a cluster."""
    return os.environ.get("IMAGEPIPE_LAKE_ROOT", str(data_dir() / "lake"))


def catalog_uri() -> str:
    """JDBC URL of the lake's Iceberg catalog: IMAGEPIPE_CATALOG_URI (in production PostgreSQL, e.g.
    jdbc:postgresql://catalog-db:5432/imagepipe?user=imagepipe, its password from the driver's PGPASSFILE, never in
    the URL), else an embedded SQLite file in the data folder."""
    return os.environ.get("IMAGEPIPE_CATALOG_URI") or f"jdbc:sqlite:{data_dir() / 'lake-catalog.sqlite'}"


def model_cache_dir() -> Path:
    """Local folder model files pass through on their way to and from the registry (Spark saves and loads models
    there). On a cluster it must be a folder the driver and the executors share."""
    return Path(os.environ.get("IMAGEPIPE_MODEL_CACHE", data_dir() / "model_cache"))


def schedule() -> str:
    """Cron expression of the pipeline's data intervals, in UTC: daily at midnight unless IMAGEPIPE_SCHEDULE says
    otherwise (e.g. "0 * * * *" for hourly windows)."""
    return os.environ.get("IMAGEPIPE_SCHEDULE", "0 0 * * *")


def retrain_on_drift() -> bool:
    """Whether the default dataset's pipeline also runs on its batch scoring's drift alarms: IMAGEPIPE_RETRAIN_ON_DRIFT
    set to true."""
    return os.environ.get("IMAGEPIPE_RETRAIN_ON_DRIFT", "").strip().lower() == "true"


def default_source_uri() -> str:
    return os.environ.get("IMAGEPIPE_SOURCE_URI", "s3://imagepipe-samples/images/")


def default_scoring_uri() -> str:
    """Prefix of unlabelled images the batch-scoring DAG labels when its run names none (asset-triggered runs)."""
    return os.environ.get("IMAGEPIPE_SCORING_URI", "s3://imagepipe-samples/unlabelled/")


def default_backbone() -> str:
    """Backbone used when a run names none: resnet18 unless the environment says otherwise (the laptop's Makefile
    sets the packaged pretrained EfficientNet-Lite0, imagepipe.dev.packaged_weights)."""
    return os.environ.get("IMAGEPIPE_BACKBONE", "resnet18")


def default_weights() -> str:
    """Backbone weights used when a run names none: pretrained torchvision weights unless the environment says
    otherwise (the embedded stack has no internet, so its Makefile sets seeded random weights)."""
    return os.environ.get("IMAGEPIPE_WEIGHTS", "DEFAULT")


def spark_jobs_dir() -> Path:
    return Path(os.environ.get("IMAGEPIPE_SPARK_JOBS_DIR", PROJECT_ROOT / "spark_jobs"))


def spark_job(name: str) -> Path:
    """The file of the job `name` (a module of spark_jobs/) where this machine keeps the jobs."""
    return spark_jobs_dir() / f"{name}.py"


def code_version() -> str:
    """The code's git commit, for model lineage; IMAGEPIPE_CODE_VERSION wins where the checkout has no .git."""
    import subprocess

    if "IMAGEPIPE_CODE_VERSION" in os.environ:
        return os.environ["IMAGEPIPE_CODE_VERSION"]
    try:
        return subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def gpu_spark_conf() -> dict[str, str]:
    """Spark resources of the jobs that run torch (extract_features, finetune_backbone), not the others: when
    IMAGEPIPE_GPUS_PER_EXECUTOR is set, the GPUs each executor and each task gets and the script that discovers them;
    on machines without GPUs, nothing."""
    gpus = os.environ.get("IMAGEPIPE_GPUS_PER_EXECUTOR")
    if not gpus:
        return {}
    return {
        "spark.executor.resource.gpu.amount": gpus,
        "spark.task.resource.gpu.amount": os.environ.get("IMAGEPIPE_GPUS_PER_TASK", "1"),
        "spark.executor.resource.gpu.discoveryScript": os.environ.get(
            "IMAGEPIPE_GPU_DISCOVERY_SCRIPT", "/opt/spark/scripts/getGpusResources.sh"
        ),
    }


def cluster_spark_conf() -> dict[str, str]:
    """Spark properties every job is submitted with, from IMAGEPIPE_SPARK_CONF (a JSON object): what the cluster
    needs whatever the job, e.g. the s3a packages and endpoint. Empty when unset."""
    import json

    text = os.environ.get("IMAGEPIPE_SPARK_CONF", "").strip()
    if not text:
        return {}
    try:
        conf = json.loads(text)
    except ValueError as error:
        raise ValueError(f"IMAGEPIPE_SPARK_CONF is not JSON ({error}); give an object of Spark properties") from None
    if not isinstance(conf, dict):
        raise ValueError('IMAGEPIPE_SPARK_CONF must be a JSON object, e.g. {"spark.ui.enabled": "false"}')
    return {str(key): str(value) for key, value in conf.items()}
