"""timm models as backbones: each model's own pretrained config (input size, resize, crop, interpolation,
normalisation), its pooled pre-logits features (built with num_classes=0), its stem-and-stages structure for freezing,
and its pretrained weights from the Hugging Face cache (filled at install time, never by a job).

timm and torch are imported inside the functions: imagepipe.featurizer.spec imports this module for its light
helpers. `python -m imagepipe.featurizer.timm_backbone` prints what timm_models.txt holds, for the installed timm.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from imagepipe.errors import InputError
from imagepipe.featurizer.backbones import TIMM_NAMES_FILE, timm_models


@dataclass(frozen=True)
class Architecture:
    """What imagepipe needs of one timm model, read from the model itself (built on the meta device: no weights)."""

    model: str  # timm's name, with the pretrained tag when the backbone names one
    config: dict  # timm's pretrained config: input_size, interpolation, crop_pct, crop_mode, mean, std, ...
    dim: int  # width of the pooled pre-logits features
    blocks: tuple[tuple[str, ...], ...]  # parameter-name prefixes of the stem, then of each stage, then the rest
    head: tuple[str, ...]  # the classifier's parameter-name prefixes (a checkpoint's head keys, dropped)


@functools.lru_cache(maxsize=8)
def architecture(model: str) -> Architecture:
    """The model's config, feature width and parameter blocks, from timm's own description of it."""
    import timm
    import torch
    from timm.models import group_parameters

    with torch.device("meta"):
        network = timm.create_model(model, pretrained=False, num_classes=0)
    config = dict(network.pretrained_cfg)
    size = config["input_size"][-1]
    try:
        dim = network(torch.empty(1, 3, size, size, device="meta")).shape[-1]
    except Exception:  # noqa: BLE001 - a forward pass meta tensors cannot take: timm's declared width
        dim = getattr(network, "head_hidden_size", None) or network.num_features
    groups = group_parameters(network, network.group_matcher(coarse=True))
    blocks = tuple(_prefixes(names) for names in groups.values())
    classifier = config.get("classifier") or ()
    head = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    return Architecture(model, config, int(dim), blocks, tuple(f"{name}." for name in head))


def _prefixes(parameter_names) -> tuple[str, ...]:
    """The modules holding these parameters, as name prefixes ("blocks.0.0.bn1."), in order, each once; a parameter
    of the model itself (a class token) by its own name."""
    prefixes = dict.fromkeys(name.rsplit(".", 1)[0] + "." if "." in name else name for name in parameter_names)
    return tuple(prefixes)


def transforms(model: str, image_size: int | None, keeps_whole_image: bool) -> dict:
    """Resize, crop, interpolation and normalisation as timm's data config gives them for the model, at image_size when
    one is set: the shorter side resized to crop/crop_pct and centre-cropped ('center'), or the whole image resized to
    that square and centre-cropped ('squash'). After pad_to_square the square is resized to the crop size itself."""
    config = architecture(model).config
    mode = config.get("crop_mode") or "center"
    if mode not in ("center", "squash"):
        raise InputError(f"timm model {model} crops with mode {mode!r}, which extraction does not apply; choose "
                         "another model or tag")
    crop = image_size or config["input_size"][-1]
    resize = crop if keeps_whole_image else math.floor(crop / config.get("crop_pct", 0.875))
    return {
        "crop_size": crop,
        "resize_size": [resize, resize] if mode == "squash" else [resize],
        "interpolation": config.get("interpolation") or "bilinear",
        "mean": [float(value) for value in config["mean"]],
        "std": [float(value) for value in config["std"]],
    }


def fixed_size(model: str) -> int | None:
    """The only input size the model takes (a ViT's position embedding), None when any size goes."""
    config = architecture(model).config
    return config["input_size"][-1] if config.get("fixed_input_size") else None


def pretrained_model(model: str, weights: str) -> str:
    """timm's name of the pretrained weights a spec names: the backbone's own (tag or timm's default) for DEFAULT, or
    the architecture with the weights' tag."""
    if weights == "DEFAULT":
        return model
    architecture_name, _, tag = model.partition(".")
    if tag and tag != weights:
        raise InputError(f"backbone timm:{model} names its weights' tag {tag}; give weights DEFAULT (or the backbone "
                         f"timm:{architecture_name} with weights {weights})")
    named = f"{architecture_name}.{weights}"
    if named not in timm_models():
        raise InputError(f"timm has no pretrained weights {weights!r} for {architecture_name}; give DEFAULT, a tag of "
                         "timm.list_models(pretrained=True), a state-dict file or random:SEED")
    return named


def hub_weights_file(model: str) -> Path:
    """The pretrained weights file of `model` (architecture.tag) in the Hugging Face cache. Jobs never download
    weights: a missing file is refused in one line saying how to put it there at install time."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    config = architecture(model).config
    repository = config.get("hf_hub_id")
    if not repository:
        raise InputError(f"timm model {model} has no pretrained weights on the Hugging Face hub; give a state-dict "
                         "file or random:SEED")
    filenames = [config["hf_hub_filename"]] if config.get("hf_hub_filename") else [
        "model.safetensors", "pytorch_model.bin"]
    for filename in filenames:
        try:
            return Path(hf_hub_download(repository, filename, local_files_only=True))
        except LocalEntryNotFoundError:
            continue
    hub_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    raise InputError(
        f"weights of timm:{model} are not in the Hugging Face cache; at install time run `hf download {repository} "
        f"{filenames[0]}` (or copy {hub_home}/hub/models--{repository.replace('/', '--')} from a machine that did), "
        "or give a state-dict file as weights")


def build(model: str, weights_path: Path | None, *, pretrained: bool):
    """The model without its classifier (pooled pre-logits out), on the CPU: random (seeded by the caller) when
    weights_path is None; timm's own loading for a pretrained file of the hub; else a state-dict file whose head keys
    are dropped and whose every other key must match."""
    import timm

    if weights_path is not None and pretrained:
        return timm.create_model(model, pretrained=True, num_classes=0,
                                 pretrained_cfg_overlay={"file": str(weights_path)})
    network = timm.create_model(model, pretrained=False, num_classes=0)
    if weights_path is not None:
        head = architecture(model).head
        state = _load_state_dict(weights_path)
        network.load_state_dict({key: value for key, value in state.items() if not key.startswith(head)})
    return network


def _load_state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


if __name__ == "__main__":
    import timm

    print(f"# timm {timm.__version__}: python -m imagepipe.featurizer.timm_backbone > {TIMM_NAMES_FILE}")
    print("\n".join(sorted(set(timm.list_models()) | set(timm.list_models(pretrained=True)))))
