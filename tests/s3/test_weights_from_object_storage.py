"""Backbone weights given as an s3:// URI, read from a real S3 endpoint over HTTP."""

from __future__ import annotations

import io

import pytest
import torch
import torchvision

from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.engine import build_model
from imagepipe.featurizer.weights import resolve_weights
from imagepipe.object_store import s3_client


def _state_dict_bytes(seed: int) -> bytes:
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), buffer)
    return buffer.getvalue()


def fingerprint(spec: FeatureSpec) -> str:
    return spec.fingerprint(resolve_weights(spec))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_weights_from_s3_load_and_fingerprint_like_the_same_local_file(s3_bucket, torch_home, tmp_path):
    content = _state_dict_bytes(seed=4)
    s3_client().put_object(Bucket=s3_bucket, Key="models/backbone.pt", Body=content)
    local = tmp_path / "backbone.pt"
    local.write_bytes(content)

    from_s3 = FeatureSpec("resnet18", f"s3://{s3_bucket}/models/backbone.pt", 64)
    model = build_model(from_s3)

    assert torch.equal(model.conv1.weight, torch.load(local, weights_only=True)["conv1.weight"])
    assert fingerprint(from_s3) == fingerprint(FeatureSpec("resnet18", str(local), 64))


def test_a_replaced_weights_object_is_fetched_again(s3_bucket, torch_home):
    uri = f"s3://{s3_bucket}/models/backbone.pt"
    s3_client().put_object(Bucket=s3_bucket, Key="models/backbone.pt", Body=_state_dict_bytes(seed=1))
    first = fingerprint(FeatureSpec("resnet18", uri, 64))
    s3_client().put_object(Bucket=s3_bucket, Key="models/backbone.pt", Body=_state_dict_bytes(seed=2))

    assert fingerprint(FeatureSpec("resnet18", uri, 64)) != first


def test_a_missing_weights_object_is_a_one_line_input_error(s3_bucket, torch_home):
    with pytest.raises(InputError, match=f"weights s3://{s3_bucket}/nothing.pt cannot be read"):
        resolve_weights(FeatureSpec("resnet18", f"s3://{s3_bucket}/nothing.pt", 64))


def test_weights_are_fetched_when_resolved_and_never_by_the_fingerprint(s3_bucket, torch_home):
    s3_client().put_object(Bucket=s3_bucket, Key="models/backbone.pt", Body=_state_dict_bytes(seed=5))
    spec = FeatureSpec("resnet18", f"s3://{s3_bucket}/models/backbone.pt", 64)
    assert not torch_home.exists()

    resolved = resolve_weights(spec)
    [fetched] = [path for path in torch_home.rglob("*") if path.is_file()]
    s3_client().delete_object(Bucket=s3_bucket, Key="models/backbone.pt")
    fetched.unlink()

    assert spec.fingerprint(resolved).startswith("resnet18-")
    assert not fetched.exists()
