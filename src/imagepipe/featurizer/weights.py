"""Backbone weights made ready for use: the state-dict file a FeatureSpec names, fetched when it is not local yet,
and its sha256 for the feature space's fingerprint.

    random:SEED                 no file: the backbone is initialised from the seed
    a path or file:// URI       that file
    s3://bucket/key             fetched once into TORCH_HOME, under the bucket, the object's ETag and its name, so a
                                replaced object is fetched again
    DEFAULT, IMAGENET1K_V1, ... torchvision's checkpoint in TORCH_HOME, downloaded when missing
    DEFAULT, a tag (timm)       the model's weights in the Hugging Face cache, filled at install time (never here)

These are the only functions that download weights; the fingerprint and the engine call them, never a property.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from imagepipe import storage
from imagepipe.errors import InputError
from imagepipe.featurizer import timm_backbone
from imagepipe.featurizer.backbones import is_timm
from imagepipe.featurizer.spec import FeatureSpec, ResolvedWeights


class WeightsUnavailableError(InputError):
    """Named pretrained weights are neither cached under TORCH_HOME nor downloadable."""


def resolve_weights(spec: FeatureSpec) -> ResolvedWeights:
    """The spec's weights with their sha256, the file fetched first where needed (see weights_file)."""
    if spec.random_seed is not None:
        return ResolvedWeights(spec.weights, spec.weights)
    return ResolvedWeights(spec.weights, _sha256_file(weights_file(spec)))


def weights_file(spec: FeatureSpec) -> Path:
    """The local state-dict file of the spec's weights, downloaded first for object storage and for named pretrained
    weights not cached yet."""
    if spec.random_seed is not None:
        raise ValueError(f"weights {spec.weights} are drawn from their seed: there is no file")
    if spec.is_s3:
        path = _fetch_from_object_storage(spec.weights)
    elif spec.is_file:
        path = Path(spec.weights.removeprefix("file://"))
    elif is_timm(spec.backbone):
        path = timm_backbone.hub_weights_file(spec.timm_weights_model)
    else:
        path = _fetch_named(spec)
    if not path.exists():
        raise InputError(f"weights file {path} does not exist; give an existing state-dict file")
    return path


def _fetch_from_object_storage(uri: str) -> Path:
    import torch.hub

    store, key = storage.locate(uri)
    etag = store.head(key)
    if etag is None:
        raise InputError(f"weights {uri} cannot be read: there is no such object; check the URI")
    path = Path(torch.hub.get_dir()) / "imagepipe-weights" / store.bucket / etag.strip('"') / key.rsplit("/", 1)[-1]
    if not path.exists():
        store.download(key, path)  # whole files only: concurrent workers may fetch the same weights
    return path


def _fetch_named(spec: FeatureSpec) -> Path:
    import torch.hub

    url = spec.torchvision_weights().url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=False)  # itself writes a whole file or none
    except Exception as error:  # any network failure ends in the same instruction to the user
        torch_home = os.environ.get("TORCH_HOME", "~/.cache/torch")
        raise WeightsUnavailableError(
            f"weights {spec.weights} for {spec.backbone} are not cached and could not be downloaded "
            f"({type(error).__name__}); put {path.name} from {url} at {path} (TORCH_HOME={torch_home}) "
            "or choose weights random:SEED"
        ) from None
    return path


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
