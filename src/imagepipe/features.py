"""Feature tables: which image partitions a feature space still lacks, and the Spark wrapper of the engine."""

from __future__ import annotations

from imagepipe import storage
from imagepipe.errors import InputError
from imagepipe.featurizer import ERROR_COLUMN, FEATURES_COLUMN, FeatureSpec, ResolvedWeights
from imagepipe.featurizer.engine import extractor_for, resolve_device
from imagepipe.lake import WINDOW_COLUMN, Lake

FEATURE_COLUMNS = ["sha256", "label", FEATURES_COLUMN, "fingerprint", WINDOW_COLUMN]
ERROR_COLUMNS = ["sha256", "label", ERROR_COLUMN, "fingerprint", WINDOW_COLUMN]
IMAGE_KEYS = ("sha256", "label", WINDOW_COLUMN)
BACKBONE_FIELDS = ("backbone", "library", "weights", "weights_kind", "weights_sha256", "image_size", "input_size")


def windows_to_featurize(image_windows: set[str], featurized_windows: set[str], run_window: str) -> list[str]:
    """Image partitions to (re)compute: every one the feature space lacks, plus the run's own window, whose images
    a re-run of ingest may have replaced."""
    return sorted((image_windows - featurized_windows) | ({run_window} & image_windows))


def extract_features(images, spec: FeatureSpec, fingerprint: str, threads: int | None = None, keys=IMAGE_KEYS):
    """DataFrame of (*keys, features, error, fingerprint) for a DataFrame of images (string key columns and their
    content); features is null and error says why for an image the backbone's decoder refused.

    The engine runs in mapInArrow on the task's GPU when Spark assigned one (or torch sees one), else on the CPU.
    Each Python worker builds the backbone once and reuses it for every batch of every task it serves. The batch
    size is spark.sql.execution.arrow.maxRecordsPerBatch, set by the job.
    """
    from pyspark.sql import functions as F

    def featurize_partition(batches):
        import torch
        from pyspark import TaskContext

        context = TaskContext.get()
        resources = context.resources() if context is not None else {}
        task_gpus = list(resources["gpu"].addresses) if "gpu" in resources else None
        device = resolve_device(torch.cuda.is_available(), task_gpus)
        yield from extractor_for(spec, device, threads).extract_batches(batches)

    columns = images.select(*keys, "content")
    schema = ", ".join(
        [*(f"{key} string" for key in keys), f"{FEATURES_COLUMN} array<float>", f"{ERROR_COLUMN} string"])
    return columns.mapInArrow(featurize_partition, schema).withColumn("fingerprint", F.lit(fingerprint))


def split_failures(extracted):
    """(features, failures): rows with a vector, and rows whose image could not be decoded, with the reason."""
    from pyspark.sql import functions as F

    failed = F.col(ERROR_COLUMN).isNotNull()
    return extracted.filter(~failed).select(*FEATURE_COLUMNS), extracted.filter(failed).select(*ERROR_COLUMNS)


def backbone_record(spec: FeatureSpec, weights: ResolvedWeights, lake: Lake, finetuned: bool) -> dict:
    """Which backbone and weights make a feature space's features: its feature space document's fields, also carried
    by the run's features record and the model version's metadata. Weights are random (seeded), fine-tuned (by the
    run, or a fine-tune's artifact in this lake given as weights) or pretrained (named, or a state-dict file)."""
    if spec.random_seed is not None:
        kind = "random"
    elif finetuned or spec.weights.startswith(storage.join(lake.root, "finetuned") + "/"):
        kind = "fine-tuned"
    else:
        kind = "pretrained"
    return {"backbone": spec.backbone, "library": spec.library(), "weights": spec.weights, "weights_kind": kind,
            "weights_sha256": weights.sha256, "image_size": spec.image_size,
            "input_size": spec.preprocessing().crop_size[0]}


def stored_backbone(lake: Lake, fingerprint: str) -> dict | None:
    """The backbone record of a stored feature space (its document's fields of backbone_record), None without one."""
    space = storage.read_json(lake.feature_space_document(fingerprint))
    if space is None:
        return None
    return {name: space[name] for name in BACKBONE_FIELDS if name in space}


def describe_backbone(record: dict | None) -> str:
    """One line for people: `timm:tf_efficientnet_lite0 (timm 1.0.31), pretrained weights <file> (sha256 1433548b),
    64 px`; records of older runs name the backbone and weights only."""
    if not record:
        return "–"
    library = f" ({record['library']})" if record.get("library") else ""
    kind = f"{record['weights_kind']} " if record.get("weights_kind") else ""
    digest = record.get("weights_sha256")
    sha = f" (sha256 {digest[:8]})" if digest and digest != record["weights"] else ""
    pixels = record.get("input_size") or record.get("image_size")
    size = f", {pixels} px" if pixels else ""
    return f"{record['backbone']}{library}, {kind}weights {record['weights']}{sha}{size}"


def feature_space_spec(lake: Lake, fingerprint: str) -> FeatureSpec:
    """The settings that made a stored feature space, from its feature_spaces/<fingerprint>.json, to extract more
    images into it (a champion's test images, or images to score)."""
    space = storage.read_json(lake.feature_space_document(fingerprint))
    if space is None:
        raise InputError(f"feature space {fingerprint} has no {lake.feature_space_document(fingerprint)}; "
                         "re-run extract_features with its settings")
    return FeatureSpec(space["backbone"], space["weights"], space["image_size"], tuple(space["preprocessing"]))


def split_reusable(images, stored):
    """(to_compute, reused): the images that still need a vector, and the stored rows that already are one for an
    image of the same window (same bytes, same feature space: the same vector). stored may be None."""
    keys = ["sha256", WINDOW_COLUMN]
    if stored is None:
        return images, None
    reused = stored.join(images.select(*keys), keys, "left_semi").select(*FEATURE_COLUMNS)
    return images.join(reused.select(*keys), keys, "left_anti"), reused
