"""What a fine-tune is: its hyperparameters (FinetuneConfig), the augmentation steps, the blocks of each backbone that
can be frozen, and the key of a fine-tune's inputs that names where its artifact is kept.

Light: no torch, so imagepipe.params (and the DAG files through it) import the bounds from here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from imagepipe.errors import InputError
from imagepipe.featurizer.backbones import is_timm, timm_model

OPTIMIZERS = ("adamw", "sgd")

# torchvision transforms v2 applied to training images only, after the images' own preprocessing steps:
#   random_resized_crop:MIN_SCALE  a random crop of MIN_SCALE..1 of the image's area, resized to the input size
#   horizontal_flip                mirrored half of the time
#   color_jitter:STRENGTH          brightness, contrast and saturation varied by up to STRENGTH (0..1]
# Without random_resized_crop the image is resized and cropped as extraction does.
AUGMENTATION_PATTERN = r"^(horizontal_flip|random_resized_crop:(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)" \
                       r"|color_jitter:(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?))$"
DEFAULT_AUGMENTATION = ("random_resized_crop:0.5", "horizontal_flip")

# Blocks a torchvision backbone's parameters fall in, in the order the image passes them: the stem first, then its
# stages. Each block is the parameter-name prefixes it holds. `freeze: N` freezes the first N blocks. A timm model's
# blocks are its own coarse parameter groups (imagepipe.featurizer.timm_backbone).
TORCHVISION_BLOCKS: dict[str, tuple[tuple[str, ...], ...]] = {
    "resnet18": (("conv1.", "bn1."), ("layer1.",), ("layer2.",), ("layer3.",), ("layer4.",)),
    "resnet50": (("conv1.", "bn1."), ("layer1.",), ("layer2.",), ("layer3.",), ("layer4.",)),
    "efficientnet_b0": tuple((f"features.{index}.",) for index in range(9)),
    "mobilenet_v3_large": tuple((f"features.{index}.",) for index in range(17)),
    "convnext_tiny": tuple((f"features.{index}.",) for index in range(8)),
    "vit_b_16": (("conv_proj.", "class_token", "encoder.pos_embedding"),
                 *((f"encoder.layers.encoder_layer_{index}.",) for index in range(12)), ("encoder.ln.",)),
}
# The form's bound; the job checks the chosen backbone's own count (FinetuneConfig.check_backbone).
MAX_FREEZE = 64


def freezable_blocks(backbone: str) -> tuple[tuple[str, ...], ...]:
    """The backbone's blocks, stem first (imports timm for a timm backbone)."""
    if is_timm(backbone):
        from imagepipe.featurizer.timm_backbone import architecture

        return architecture(timm_model(backbone)).blocks
    return TORCHVISION_BLOCKS[backbone]


@dataclass(frozen=True)
class FinetuneConfig:
    """The hyperparameters of one fine-tune; batch_size is per process."""

    epochs: int = 10
    learning_rate: float = 3e-4
    batch_size: int = 32
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    freeze: int = 0
    augmentation: tuple[str, ...] = DEFAULT_AUGMENTATION
    patience: int = 3  # epochs without a better validation accuracy before training stops
    label_smoothing: float = 0.1  # share of each target spread over the other classes: less over-confident heads
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "augmentation", tuple(self.augmentation))

    def check_backbone(self, backbone: str) -> None:
        """What one field's bounds cannot say: freeze counts the chosen backbone's blocks."""
        blocks = len(freezable_blocks(backbone))
        if self.freeze > blocks:
            raise InputError(f"freeze {self.freeze} is more than the {blocks} blocks of {backbone} (its stem and "
                             f"stages); use 0..{blocks}")

    def augmentation_steps(self) -> dict[str, float | None]:
        """Each augmentation step's name and its value (None for a step without one)."""
        steps = {}
        for step in self.augmentation:
            name, _, value = step.partition(":")
            steps[name] = float(value) if value else None
        return steps

    def to_json(self) -> dict:
        return {**asdict(self), "augmentation": list(self.augmentation)}


def inputs_key(backbone: str, weights_sha256: str, preprocessing: str, steps: Sequence[str], config: FinetuneConfig,
               images: dict[str, Sequence[tuple[str, str]]]) -> str:
    """Name of a fine-tune's artifact: the backbone and a hash of everything its result depends on (the base weights
    by their sha256, the input transforms, the hyperparameters and each split's (sha256, label) pairs), so the same
    inputs find the same artifact and any change makes a new one."""
    identity = {
        "backbone": backbone,
        "weights_sha256": weights_sha256,
        "preprocessing": preprocessing,
        "steps": list(steps),
        "config": config.to_json(),
        "images": {split: sorted(map(list, pairs)) for split, pairs in sorted(images.items())},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{backbone}-{digest}"
