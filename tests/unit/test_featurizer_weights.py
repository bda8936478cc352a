"""The weights a feature space names, made ready by resolve_weights: a state-dict file, torchvision's named weights
from its checkpoint cache, or seeded random weights. (Weights in object storage: tests/s3.)"""

import pytest
import torch

from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.engine import build_model
from imagepipe.featurizer.weights import WeightsUnavailableError, resolve_weights
from unit.test_featurizer_engine import SMALL, save_resnet18_state_dict

RESNET18_CHECKPOINT = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1 (its DEFAULT)


def fingerprint(spec: FeatureSpec) -> str:
    return spec.fingerprint(resolve_weights(spec))


def test_seeded_random_weights_resolve_to_their_name_without_a_file():
    assert resolve_weights(FeatureSpec("resnet18", "random:7", SMALL)).sha256 == "random:7"


def test_a_state_dict_files_fingerprint_is_pinned_by_its_bytes(tmp_path):
    path = tmp_path / "backbone.pt"
    path.write_bytes(b"state dict bytes")
    spec = FeatureSpec("resnet18", str(path), SMALL, ("exif_transpose", "pad_to_square"))

    # Computed before the featurizer was split, from these very bytes: existing feature spaces keep their names.
    assert fingerprint(spec) == "resnet18-9bf444c30897fd76"


def test_the_fingerprint_reads_the_weights_only_through_their_resolution(tmp_path):
    path = tmp_path / "backbone.pt"
    path.write_bytes(b"state dict bytes")
    spec = FeatureSpec("resnet18", str(path), SMALL)
    resolved = resolve_weights(spec)
    before = spec.fingerprint(resolved)

    path.unlink()

    assert spec.fingerprint(resolved) == before


def test_state_dict_file_fingerprint_follows_the_file_bytes(tmp_path):
    path = tmp_path / "backbone.pt"
    save_resnet18_state_dict(path, seed=7)
    spec = FeatureSpec(weights=str(path), image_size=SMALL)
    before = fingerprint(spec)

    save_resnet18_state_dict(path, seed=8)

    assert fingerprint(spec) != before


def test_missing_state_dict_file_is_an_input_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "backbone.pt"

    with pytest.raises(InputError, match=f"weights file {path} does not exist"):
        resolve_weights(FeatureSpec(weights=str(path), image_size=SMALL))


def named_weights_failure(monkeypatch, tmp_path) -> WeightsUnavailableError:
    torch_home = tmp_path / "torch_home"
    torch_home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    try:
        resolve_weights(FeatureSpec("resnet18", "IMAGENET1K_V1", SMALL))
    except WeightsUnavailableError as error:
        return error
    pytest.skip("the pretrained checkpoint was downloaded: this machine has internet")


def test_named_weights_unavailable_offline_say_which_file_to_put_where(monkeypatch, tmp_path):
    error = named_weights_failure(monkeypatch, tmp_path)

    message = str(error)
    assert RESNET18_CHECKPOINT in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / RESNET18_CHECKPOINT) in message
    assert "random:SEED" in message
    assert "\n" not in message


def test_named_weights_download_fails_on_the_network_not_on_a_missing_cache_folder(monkeypatch, tmp_path):
    error = named_weights_failure(monkeypatch, tmp_path)

    assert "(FileNotFoundError)" not in str(error)


def test_named_weights_put_where_the_message_says_are_used(monkeypatch, tmp_path):
    torch_home = tmp_path / "torch_home"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    save_resnet18_state_dict(checkpoints / RESNET18_CHECKPOINT, seed=3)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    saved = torch.load(checkpoints / RESNET18_CHECKPOINT, weights_only=True)
    spec = FeatureSpec("resnet18", "IMAGENET1K_V1", SMALL)

    model = build_model(spec)

    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    assert fingerprint(spec).startswith("resnet18-")

