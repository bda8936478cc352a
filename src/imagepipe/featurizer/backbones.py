"""The backbones a feature space can use, by name: six torchvision classifiers by their own names, and every timm model
as `timm:<model>` or `timm:<model>.<pretrained tag>` (for example `timm:convnext_tiny.fb_in22k`).

Light: timm's model names come from timm_models.txt, the installed timm's list written out (a unit test keeps it equal
to timm's), so the trigger form offers and checks them without importing timm or torch at parse.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

TIMM_PREFIX = "timm:"
TIMM_NAMES_FILE = "timm_models.txt"


@dataclass(frozen=True)
class Backbone:
    """A torchvision classifier used as a frozen feature extractor."""

    builder: str  # torchvision.models function
    weights_enum: str  # its torchvision weights enum
    head: str  # dotted path of the classification head, replaced by an identity
    dim: int  # width of the features left once the head is gone
    fixed_size: int | None = None  # input size the architecture requires, if any


TORCHVISION: dict[str, Backbone] = {
    "resnet18": Backbone("resnet18", "ResNet18_Weights", "fc", 512),
    "resnet50": Backbone("resnet50", "ResNet50_Weights", "fc", 2048),
    "efficientnet_b0": Backbone("efficientnet_b0", "EfficientNet_B0_Weights", "classifier", 1280),
    "mobilenet_v3_large": Backbone("mobilenet_v3_large", "MobileNet_V3_Large_Weights", "classifier", 960),
    "convnext_tiny": Backbone("convnext_tiny", "ConvNeXt_Tiny_Weights", "classifier.2", 768),
    "vit_b_16": Backbone("vit_b_16", "ViT_B_16_Weights", "heads", 768, fixed_size=224),
}


@functools.cache
def timm_models() -> tuple[str, ...]:
    """timm's model names (architectures and architecture.tag of pretrained weights), as timm_models.txt lists them."""
    text = resources.files(__package__).joinpath(TIMM_NAMES_FILE).read_text()
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def choices() -> list[str]:
    """Every backbone name a run may give: torchvision's, then timm's with their prefix."""
    return [*sorted(TORCHVISION), *(f"{TIMM_PREFIX}{name}" for name in timm_models())]


def is_timm(backbone: str) -> bool:
    return backbone.startswith(TIMM_PREFIX)


def timm_model(backbone: str) -> str:
    """The timm model name of a `timm:` backbone."""
    return backbone.removeprefix(TIMM_PREFIX)


def check_known(backbone: str) -> str:
    """The backbone, or ValueError in one line when no library offers it."""
    if is_timm(backbone):
        if timm_model(backbone) not in timm_models():
            raise ValueError(f"unknown backbone {backbone!r}: timm has no model {timm_model(backbone)!r}; give a "
                             "name from timm.list_models() (or list_models(pretrained=True) with its tag)")
    elif backbone not in TORCHVISION:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(sorted(TORCHVISION))} or a timm "
                         "model as timm:<model>")
    return backbone
