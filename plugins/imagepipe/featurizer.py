"""The feature-extraction engine: Arrow record batches of image bytes in, float32 feature vectors out.

Pure torch/torchvision code with no Spark import, so it runs (and is benchmarked) on a machine without Spark; the
Spark job calls `extract_batch` from mapInArrow. torch is imported inside functions: this module is importable by a
DAG file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from imagepipe.errors import InputError

# Frozen torchvision backbones: builder name, weights enum name, the attribute holding the classification head,
# and the width of the features left once that head is replaced by an identity.
BACKBONES: dict[str, tuple[str, str, str, int]] = {
    "resnet18": ("resnet18", "ResNet18_Weights", "fc", 512),
    "resnet50": ("resnet50", "ResNet50_Weights", "fc", 2048),
}

FEATURES_COLUMN = "features"
CONTENT_COLUMN = "content"


class WeightsUnavailableError(InputError):
    """Named pretrained weights are neither cached under TORCH_HOME nor downloadable."""


def feature_dim(backbone: str) -> int:
    return BACKBONES[_known_backbone(backbone)][3]


def _known_backbone(backbone: str) -> str:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(sorted(BACKBONES))}")
    return backbone


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureSpec:
    """What defines a feature space: backbone, weights, input size.

    weights is one of: `random:SEED` (seeded random initialisation, for smoke tests and offline demos), a torchvision
    weights name of the backbone (`DEFAULT`, `IMAGENET1K_V1`, ...), or a path to a state-dict file.
    image_size is the square crop fed to the backbone; None takes the weights' own.
    """

    backbone: str = "resnet18"
    weights: str = "DEFAULT"
    image_size: int | None = None

    def __post_init__(self):
        _known_backbone(self.backbone)
        if self.image_size is not None and not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size {self.image_size} is out of range; use 32..1024 pixels")
        if self.weights.startswith("random"):
            _, _, seed = self.weights.partition(":")
            if not seed.isdigit():
                raise ValueError(f"weights {self.weights!r} needs an explicit seed, e.g. random:0")

    @property
    def random_seed(self) -> int | None:
        return int(self.weights.split(":", 1)[1]) if self.weights.startswith("random:") else None

    @property
    def is_file(self) -> bool:
        return self.random_seed is None and ("/" in self.weights or self.weights.endswith((".pt", ".pth")))

    def torchvision_weights(self):
        """The torchvision weights enum member this spec names, or the backbone's default one for its transforms."""
        from torchvision.models import get_weight

        enum_name = BACKBONES[self.backbone][1]
        member = "DEFAULT" if self.random_seed is not None or self.is_file else self.weights
        try:
            return get_weight(f"{enum_name}.{member}")
        except (KeyError, ValueError, AttributeError):
            raise ValueError(
                f"unknown weights {self.weights!r} for {self.backbone}; use DEFAULT, a {enum_name} name, "
                "a state-dict file path or random:SEED"
            ) from None

    def preprocessing(self):
        """The backbone's own resize, crop and normalisation, at image_size when one is set."""
        transforms = self.torchvision_weights().transforms()
        if self.image_size is None:
            return transforms
        from torchvision.transforms._presets import ImageClassification

        resize = round(self.image_size * transforms.resize_size[0] / transforms.crop_size[0])
        return ImageClassification(
            crop_size=self.image_size,
            resize_size=resize,
            mean=transforms.mean,
            std=transforms.std,
            interpolation=transforms.interpolation,
        )

    def weights_path(self) -> Path:
        """Where the weights file lies (or must be put, for named torchvision weights)."""
        if self.is_file:
            return Path(self.weights.removeprefix("file://"))
        import torch.hub

        url = self.torchvision_weights().url
        return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]

    def existing_weights_path(self) -> Path:
        """The weights file, downloaded first for named torchvision weights that are not cached yet."""
        path = self.weights_path()
        if not path.exists() and not self.is_file:
            _download_named_weights(self, path)
        if not path.exists():
            raise InputError(f"weights file {path} does not exist; give an existing state-dict file")
        return path

    def weights_sha256(self) -> str:
        return self.weights if self.random_seed is not None else _sha256_file(self.existing_weights_path())

    def fingerprint(self) -> str:
        """Identity of the feature space: backbone, weights digest, preprocessing, input size."""
        identity = {
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256(),
            "preprocessing": repr(self.preprocessing()),
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.backbone}-{digest}"


def _download_named_weights(spec: FeatureSpec, path: Path) -> None:
    import torch.hub

    url = spec.torchvision_weights().url
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=False)
    except Exception as error:  # any network failure ends in the same instruction to the user
        raise WeightsUnavailableError(
            f"weights {spec.weights} for {spec.backbone} are not cached and could not be downloaded ({type(error).__name__}); "
            f"put {url.rsplit('/', 1)[-1]} from {url} at {path} (TORCH_HOME={os.environ.get('TORCH_HOME', '~/.cache/torch')}) "
            "or choose weights random:SEED"
        ) from None


def build_model(spec: FeatureSpec):
    """The frozen backbone with its head replaced by an identity, in eval mode."""
    import torch
    import torchvision.models

    builder, _, head, _ = BACKBONES[spec.backbone]
    if spec.random_seed is not None:
        torch.manual_seed(spec.random_seed)
        model = getattr(torchvision.models, builder)(weights=None)
    else:
        model = getattr(torchvision.models, builder)(weights=None)
        state_dict = torch.load(spec.existing_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state_dict)
    setattr(model, head, torch.nn.Identity())
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


class FeatureExtractor:
    """One backbone held in memory, turning encoded images into feature vectors."""

    def __init__(self, spec: FeatureSpec, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.spec = spec
        self.model = build_model(spec)
        self.transform = spec.preprocessing()

    def _decode(self, content: bytes):
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        with Image.open(io.BytesIO(content)) as image:
            return self.transform(pil_to_tensor(image.convert("RGB")))

    def features(self, contents: list[bytes]):
        """float32 array of shape (len(contents), feature_dim)."""
        import numpy as np
        import torch

        if not contents:
            return np.zeros((0, feature_dim(self.spec.backbone)), dtype=np.float32)
        with torch.inference_mode():
            batch = torch.stack([self._decode(content) for content in contents])
            return self.model(batch).float().numpy()


@functools.lru_cache(maxsize=2)
def extractor_for(spec: FeatureSpec, threads: int | None = None) -> FeatureExtractor:
    """The extractor for `spec`, built once per Python process and reused across batches and Spark tasks."""
    return FeatureExtractor(spec, threads)


def extract_batch(batch, spec: FeatureSpec, threads: int | None = None):
    """Replace the content column of an Arrow record batch by a list<float32> features column."""
    import pyarrow as pa

    extractor = extractor_for(spec, threads)
    vectors = extractor.features(batch.column(CONTENT_COLUMN).to_pylist())
    dim = vectors.shape[1]
    features = pa.ListArray.from_arrays(
        pa.array(range(0, (len(vectors) + 1) * dim, dim), type=pa.int32()), pa.array(vectors.reshape(-1))
    )
    keep = [name for name in batch.schema.names if name != CONTENT_COLUMN]
    return pa.RecordBatch.from_arrays([batch.column(name) for name in keep] + [features], names=keep + [FEATURES_COLUMN])
