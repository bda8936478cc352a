"""The pipeline's outputs as Airflow Assets, so other DAGs can be scheduled on them: curated images, feature tables,
a model's champion, its batch predictions and its drift alarms, each dataset's its own. URIs are derived from where
the data lives (file:// for a local lake or registry, s3:// for object storage, s3a:// written as s3://), so every DAG
of a deployment names the same asset. For DAG files only: it imports Airflow's task SDK."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Asset

from imagepipe import storage
from imagepipe.datasets import DEFAULT
from imagepipe.lake import Lake


def uri(location: str) -> str:
    """The asset URI of a lake or registry location."""
    if storage.is_s3(location):
        return "s3://" + location.split("://", 1)[1]
    if location.startswith("file://"):
        return location
    return Path(location).absolute().as_uri()


def curated_images(lake_root: str, dataset: str = DEFAULT) -> Asset:
    """A dataset's curated images (`lake_root` is the dataset's own lake folder)."""
    return Asset(name=suffixed("imagepipe_curated_images", dataset), uri=uri(Lake(lake_root).images.location))


def features(lake_root: str, dataset: str = DEFAULT) -> Asset:
    return Asset(name=suffixed("imagepipe_features", dataset), uri=uri(storage.join(lake_root, "features")))


def suffixed(name: str, dataset: str) -> str:
    """Asset names are unique in a deployment: the default dataset keeps the bare name (the lake before datasets)."""
    return name if dataset == DEFAULT else f"{name}__{dataset}"


def champion(registry_uri: str, model_name: str) -> Asset:
    """Updated only when the champion changes (a promotion or a rollback), never by a run that kept it."""
    return Asset(name=f"imagepipe_champion_{model_name}",
                 uri=uri(storage.join(registry_uri, model_name, "champion.json")))


def predictions(lake_root: str, model_name: str) -> Asset:
    return Asset(name=f"imagepipe_predictions_{model_name}",
                 uri=uri(Lake(lake_root).predictions(model_name).location))


def drift(lake_root: str, model_name: str) -> Asset:
    """Updated only by a batch scoring run whose drift alarmed: what a retraining can be scheduled on."""
    return Asset(name=f"imagepipe_drift_{model_name}", uri=uri(Lake(lake_root).drift(model_name).location))
