"""What defines a feature space: a FeatureSpec (backbone, weights, input size, preprocessing steps), its transforms,
and the fingerprint that names the space in the lake. The backbones on offer are in imagepipe.featurizer.backbones.

Light: torchvision and timm are imported only by the methods that need them, so DAG files import this module.
The fingerprint takes the weights as imagepipe.featurizer.weights.resolve_weights made them ready: resolving is the
one step that may download anything.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass

from imagepipe.featurizer import timm_backbone
from imagepipe.featurizer.backbones import TORCHVISION, check_known, is_timm, timm_model
from imagepipe.preprocessing import DEFAULT_STEPS, keeps_whole_image, parse_steps

# Columns of the feature tables: the engine turns a batch's content into features (or the error that stopped it).
FEATURES_COLUMN = "features"
CONTENT_COLUMN = "content"
ERROR_COLUMN = "error"


@dataclass(frozen=True)
class ResolvedWeights:
    """A spec's weights made ready for use by imagepipe.featurizer.weights.resolve_weights."""

    name: str  # the spec's weights, as it names them
    sha256: str  # the state-dict file's sha256; for seeded random weights their name (random:SEED), all they are


@dataclass(frozen=True)
class FeatureSpec:
    """What defines a feature space: backbone, weights, input size and the image preprocessing steps.

    backbone is a torchvision name or `timm:<model>[.<tag>]` (imagepipe.featurizer.backbones). weights is one of:
    `random:SEED` (seeded random initialisation, for smoke tests), the backbone's pretrained weights by name
    (`DEFAULT`; a torchvision weights name such as `IMAGENET1K_V1`; a timm pretrained tag such as `fb_in22k`), or a
    state-dict file by path or s3:// URI.
    image_size is the square crop fed to the backbone; None takes the weights' own. steps are the Pillow steps
    applied before the backbone's own transforms (imagepipe.preprocessing), kept in their canonical form.
    """

    backbone: str = "resnet18"
    weights: str = "DEFAULT"
    image_size: int | None = None
    steps: tuple[str, ...] = DEFAULT_STEPS

    def __post_init__(self):
        check_known(self.backbone)
        object.__setattr__(self, "steps", parse_steps(self.steps))  # frozen: canonical steps, one fingerprint
        if self.image_size is not None and not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size {self.image_size} is out of range; use 32..1024 pixels")
        fixed = self.fixed_size()
        if fixed is not None and self.image_size not in (None, fixed):
            raise ValueError(f"{self.backbone} takes {fixed}-pixel inputs only; use image_size {fixed}")
        if self.weights.startswith("random"):
            _, _, seed = self.weights.partition(":")
            if not seed.isdigit():
                raise ValueError(f"weights {self.weights!r} needs an explicit seed, e.g. random:0")

    def fixed_size(self) -> int | None:
        """The only input size the backbone takes, if it has one (a ViT's)."""
        if is_timm(self.backbone):
            return timm_backbone.fixed_size(timm_model(self.backbone))
        return TORCHVISION[self.backbone].fixed_size

    @property
    def dim(self) -> int:
        if is_timm(self.backbone):
            return timm_backbone.architecture(timm_model(self.backbone)).dim
        return TORCHVISION[self.backbone].dim

    def library(self) -> str:
        """The library and release that build the backbone, e.g. `timm 1.0.31`."""
        name = "timm" if is_timm(self.backbone) else "torchvision"
        return f"{name} {importlib.metadata.version(name)}"

    @property
    def timm_weights_model(self) -> str:
        """timm's name of the pretrained weights a timm spec names (DEFAULT or a tag)."""
        return timm_backbone.pretrained_model(timm_model(self.backbone), self.weights)

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

        enum_name = TORCHVISION[self.backbone].weights_enum
        member = "DEFAULT" if self.random_seed is not None or self.is_file else self.weights
        try:
            return get_weight(f"{enum_name}.{member}")
        except (KeyError, ValueError, AttributeError):
            raise ValueError(
                f"unknown weights {self.weights!r} for {self.backbone}; use DEFAULT, a {enum_name} name, "
                "a state-dict file path or random:SEED"
            ) from None

    def timm_transforms(self) -> dict:
        """A timm backbone's resize, crop, interpolation and normalisation as explicit fields (timm_backbone)."""
        return timm_backbone.transforms(timm_model(self.backbone), self.image_size, keeps_whole_image(self.steps))

    def preprocessing(self):
        """The backbone's own resize, crop and normalisation, at image_size when one is set. After pad_to_square
        the square is resized to the crop size, so the crop keeps all of it."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms._presets import ImageClassification

        if is_timm(self.backbone):
            fields = self.timm_transforms()
            preset = ImageClassification(crop_size=fields["crop_size"], mean=fields["mean"], std=fields["std"],
                                         interpolation=InterpolationMode(fields["interpolation"]))
            preset.resize_size = fields["resize_size"]  # [side] resizes the shorter side, [side, side] squashes
            return preset
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
        if is_timm(self.backbone):
            return self._timm_fingerprint(weights)
        identity = {
            "backbone": self.backbone,
            "weights_sha256": weights.sha256,
            "preprocessing": repr(self.preprocessing()),
            "steps": list(self.steps),
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.backbone}-{digest}"

    def _timm_fingerprint(self, weights: ResolvedWeights) -> str:
        """A timm space's identity: the model and timm's version (a release may change a model), the weights' sha256,
        the transforms' fields, the input size and the steps. Prefixed by the model's name without its `timm:`, as
        the name becomes a folder."""
        transforms = self.timm_transforms()
        identity = {
            "backbone": self.backbone,
            "library": self.library(),
            "weights_sha256": weights.sha256,
            "transforms": transforms,
            "input_size": transforms["crop_size"],
            "steps": list(self.steps),
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return f"timm-{timm_model(self.backbone)}-{digest}"
