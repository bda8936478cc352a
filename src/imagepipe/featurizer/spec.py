"""What defines a feature space: the backbones on offer, a FeatureSpec (backbone, weights, input size, preprocessing
steps), and the fingerprint that names the space in the lake.

Light: torchvision is imported only by the methods that need it, so DAG files import this module for the backbones.
The fingerprint takes the weights as imagepipe.featurizer.weights.resolve_weights made them ready: resolving is the
one step that may download anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from imagepipe.preprocessing import DEFAULT_STEPS, keeps_whole_image, parse_steps


@dataclass(frozen=True)
class Backbone:
    """A torchvision classifier used as a frozen feature extractor."""

    builder: str  # torchvision.models function
    weights_enum: str  # its torchvision weights enum
    head: str  # dotted path of the classification head, replaced by an identity
    dim: int  # width of the features left once the head is gone
    fixed_size: int | None = None  # input size the architecture requires, if any


BACKBONES: dict[str, Backbone] = {
    "resnet18": Backbone("resnet18", "ResNet18_Weights", "fc", 512),
    "resnet50": Backbone("resnet50", "ResNet50_Weights", "fc", 2048),
    "efficientnet_b0": Backbone("efficientnet_b0", "EfficientNet_B0_Weights", "classifier", 1280),
    "mobilenet_v3_large": Backbone("mobilenet_v3_large", "MobileNet_V3_Large_Weights", "classifier", 960),
    "convnext_tiny": Backbone("convnext_tiny", "ConvNeXt_Tiny_Weights", "classifier.2", 768),
    "vit_b_16": Backbone("vit_b_16", "ViT_B_16_Weights", "heads", 768, fixed_size=224),
}

# Columns of the feature tables: the engine turns a batch's content into features (or the error that stopped it).
FEATURES_COLUMN = "features"
CONTENT_COLUMN = "content"
ERROR_COLUMN = "error"


def feature_dim(backbone: str) -> int:
    return BACKBONES[_known_backbone(backbone)].dim


def _known_backbone(backbone: str) -> str:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(sorted(BACKBONES))}")
    return backbone


@dataclass(frozen=True)
class ResolvedWeights:
    """A spec's weights made ready for use by imagepipe.featurizer.weights.resolve_weights."""

    name: str  # the spec's weights, as it names them
    sha256: str  # the state-dict file's sha256; for seeded random weights their name (random:SEED), all they are


@dataclass(frozen=True)
class FeatureSpec:
    """What defines a feature space: backbone, weights, input size and the image preprocessing steps.

    weights is one of: `random:SEED` (seeded random initialisation, for smoke tests and offline demos), a torchvision
    weights name of the backbone (`DEFAULT`, `IMAGENET1K_V1`, ...), or a state-dict file by path or s3:// URI.
    image_size is the square crop fed to the backbone; None takes the weights' own. steps are the Pillow steps
    applied before the backbone's own transforms (imagepipe.preprocessing), kept in their canonical form.
    """

    backbone: str = "resnet18"
    weights: str = "DEFAULT"
    image_size: int | None = None
    steps: tuple[str, ...] = DEFAULT_STEPS

    def __post_init__(self):
        _known_backbone(self.backbone)
        object.__setattr__(self, "steps", parse_steps(self.steps))  # frozen: canonical steps, one fingerprint
        if self.image_size is not None and not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size {self.image_size} is out of range; use 32..1024 pixels")
        fixed = BACKBONES[self.backbone].fixed_size
        if fixed is not None and self.image_size not in (None, fixed):
            raise ValueError(f"{self.backbone} takes {fixed}-pixel inputs only; use image_size {fixed}")
        if self.weights.startswith("random"):
            _, _, seed = self.weights.partition(":")
            if not seed.isdigit():
                raise ValueError(f"weights {self.weights!r} needs an explicit seed, e.g. random:0")

    @property
    def dim(self) -> int:
        return BACKBONES[self.backbone].dim

    @property
    def random_seed(self) -> int | None:
        return int(self.weights.split(":", 1)[1]) if self.weights.startswith("random:") else None

    @property
    def is_file(self) -> bool:
        return self.random_seed is None and ("/" in self.weights or self.weights.endswith((".pt", ".pth")))

    @property
    def is_s3(self) -> bool:
        return self.weights.startswith(("s3://", "s3a://"))

    def torchvision_weights(self):
        """The torchvision weights enum member this spec names, or the backbone's default one for its transforms."""
        from torchvision.models import get_weight

        enum_name = BACKBONES[self.backbone].weights_enum
        member = "DEFAULT" if self.random_seed is not None or self.is_file else self.weights
        try:
            return get_weight(f"{enum_name}.{member}")
        except (KeyError, ValueError, AttributeError):
            raise ValueError(
                f"unknown weights {self.weights!r} for {self.backbone}; use DEFAULT, a {enum_name} name, "
                "a state-dict file path or random:SEED"
            ) from None

    def preprocessing(self):
        """The backbone's own resize, crop and normalisation, at image_size when one is set. After pad_to_square
        the square is resized to the crop size, so the crop keeps all of it."""
        from torchvision.transforms._presets import ImageClassification

        transforms = self.torchvision_weights().transforms()
        crop = self.image_size or transforms.crop_size[0]
        resize_ratio = transforms.resize_size[0] / transforms.crop_size[0]
        resize = crop if keeps_whole_image(self.steps) else round(crop * resize_ratio)
        return ImageClassification(
            crop_size=crop,
            resize_size=resize,
            mean=transforms.mean,
            std=transforms.std,
            interpolation=transforms.interpolation,
        )

    def fingerprint(self, weights: ResolvedWeights) -> str:
        """Identity of the feature space: backbone, the sha256 of its resolved weights, the backbone's transforms
        (input size included) and the preprocessing steps, the default exif_transpose included, so no step is
        implied."""
        if weights.name != self.weights:
            raise ValueError(f"weights {weights.name!r} were resolved for another feature space than {self.weights!r}")
        identity = {
            "backbone": self.backbone,
            "weights_sha256": weights.sha256,
            "preprocessing": repr(self.preprocessing()),
            "steps": list(self.steps),
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.backbone}-{digest}"
