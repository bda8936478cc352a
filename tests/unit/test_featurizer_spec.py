"""The feature space's definition: what a FeatureSpec accepts, and the fingerprint that names the space in the lake."""

import os
import subprocess
import sys

import pytest

from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec, ResolvedWeights
from imagepipe.featurizer.weights import resolve_weights

# Small crops keep the CPU-only backbone fast; the feature width does not depend on the crop.
SMALL = 64


def fingerprint(spec: FeatureSpec) -> str:
    return spec.fingerprint(resolve_weights(spec))


def test_unknown_backbone_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'; choose one of convnext_tiny, efficientnet_b0, "
                                         "mobilenet_v3_large, resnet18, resnet50, vit_b_16 or a timm model"):
        FeatureSpec(backbone="vgg16", weights="random:0")


@pytest.mark.parametrize("weights", ["random", "random:", "random:abc", "random:-1"])
def test_random_weights_without_a_seed_are_refused(weights):
    with pytest.raises(ValueError, match="needs an explicit seed, e.g. random:0"):
        FeatureSpec(weights=weights)


@pytest.mark.parametrize("image_size", [0, 16, 31, 1025])
def test_image_size_out_of_range_is_refused(image_size):
    with pytest.raises(ValueError, match=f"image_size {image_size} is out of range; use 32..1024 pixels"):
        FeatureSpec(weights="random:0", image_size=image_size)


@pytest.mark.parametrize("image_size", [32, 1024, None])
def test_image_size_within_range_is_accepted(image_size):
    assert FeatureSpec(weights="random:0", image_size=image_size).image_size == image_size


def test_feature_widths_of_the_backbones():
    assert FeatureSpec("resnet18", "random:0").dim == 512
    assert FeatureSpec("resnet50", "random:0").dim == 2048


@pytest.mark.parametrize(
    "spec, known",
    [
        (FeatureSpec("resnet18", "random:0", 224), "resnet18-69c5ebefe7a66ad8"),
        (FeatureSpec("resnet18", "random:0"), "resnet18-69c5ebefe7a66ad8"),  # 224 is resnet18's own crop
        (FeatureSpec("resnet18", "random:0", SMALL, ()), "resnet18-db65831a8b600b76"),
        (FeatureSpec("efficientnet_b0", "random:3", None, ("exif_transpose", "median:3")),
         "efficientnet_b0-2aa806102f9cdd8b"),
    ],
    ids=["resnet18_224", "resnet18_own_size", "resnet18_64_no_steps", "efficientnet_median"],
)
def test_fingerprints_of_existing_feature_spaces_do_not_change(spec, known):
    # Computed before the featurizer was split: a changed value would orphan every feature table already in a lake.
    assert fingerprint(spec) == known


def test_fingerprint_is_stable_for_equal_specs():
    first = fingerprint(FeatureSpec("resnet18", "random:0", SMALL))
    second = fingerprint(FeatureSpec("resnet18", "random:0", SMALL))

    assert first == second
    assert first.startswith("resnet18-")


@pytest.mark.parametrize(
    "other",
    [
        FeatureSpec("resnet18", "random:0", 96),
        FeatureSpec("resnet18", "random:1", SMALL),
        FeatureSpec("resnet50", "random:0", SMALL),
        FeatureSpec("resnet18", "random:0", SMALL, ()),
        FeatureSpec("resnet18", "random:0", SMALL, ("exif_transpose", "median:3")),
        FeatureSpec("resnet18", "random:0", SMALL, ("exif_transpose", "pad_to_square")),
    ],
    ids=["image_size", "seed", "backbone", "no_exif", "median", "pad_to_square"],
)
def test_fingerprint_differs_when_the_feature_space_differs(other):
    assert fingerprint(other) != fingerprint(FeatureSpec("resnet18", "random:0", SMALL))


def test_fingerprint_names_the_default_exif_step_and_ignores_how_steps_are_written():
    default = FeatureSpec("resnet18", "random:0", SMALL)

    assert default.steps == ("exif_transpose",)
    assert fingerprint(default) == fingerprint(FeatureSpec("resnet18", "random:0", SMALL, ("exif_transpose",)))
    assert (
        fingerprint(FeatureSpec("resnet18", "random:0", SMALL, (" gaussian:1.50", "median:03")))
        == fingerprint(FeatureSpec("resnet18", "random:0", SMALL, ("gaussian:1.5", "median:3")))
    )


def test_a_bad_preprocessing_step_is_refused_by_the_spec():
    with pytest.raises(InputError,
                       match="preprocessing step 'median:4': SIZE must be an odd whole number from 3 to 15"):
        FeatureSpec("resnet18", "random:0", SMALL, ("median:4",))

def test_a_fingerprint_refuses_weights_resolved_for_another_spec():
    with pytest.raises(ValueError, match="weights 'random:1' were resolved for another feature space than 'random:0'"):
        FeatureSpec("resnet18", "random:0", SMALL).fingerprint(ResolvedWeights("random:1", "random:1"))


def test_a_fixed_size_backbone_refuses_another_size():
    with pytest.raises(ValueError, match="vit_b_16 takes 224-pixel inputs only"):
        FeatureSpec("vit_b_16", "random:0", 160)


def test_the_spec_imports_without_torch():
    # DAG files import the spec at every parse: torch costs seconds there.
    probe = ("import sys, imagepipe.featurizer, imagepipe.params; "
             "print(sorted({'torch', 'torchvision', 'timm'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_an_unknown_timm_model_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^unknown backbone 'timm:resnet_nope': timm has no model 'resnet_nope'; "):
        FeatureSpec("timm:resnet_nope", "random:0")


def test_a_timm_model_with_a_fixed_input_size_refuses_another_size():
    with pytest.raises(ValueError, match="timm:vit_small_patch14_dinov2.lvd142m takes 518-pixel inputs only; "
                                         "use image_size 518"):
        FeatureSpec("timm:vit_small_patch14_dinov2.lvd142m", "random:0", 224)


def test_a_timm_backbone_takes_resize_crop_and_normalisation_from_its_pretrained_config():
    lite0 = FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 64)
    squashed = FeatureSpec("timm:convnext_tiny.fb_in22k_ft_in1k_384", "random:0", 96)  # its config squashes

    assert lite0.timm_transforms() == {"crop_size": 64, "resize_size": [73], "interpolation": "bicubic",
                                       "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}  # 73 = 64 / crop_pct 0.875
    assert FeatureSpec("timm:tf_efficientnet_lite0", "random:0").timm_transforms()["crop_size"] == 224
    assert squashed.timm_transforms()["resize_size"] == [96, 96]
    padded = FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 64, ("exif_transpose", "pad_to_square"))
    assert padded.timm_transforms()["resize_size"] == [64]
    preset = lite0.preprocessing()
    assert (preset.crop_size, preset.resize_size, preset.mean) == ([64], [73], [0.5, 0.5, 0.5])


def test_a_timm_fingerprint_names_the_model_and_covers_timm_s_release(monkeypatch):
    spec = FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 64)
    first = fingerprint(spec)

    assert first.startswith("timm-tf_efficientnet_lite0-") and ":" not in first  # a folder name in the lake
    assert fingerprint(FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 64)) == first
    for other in [FeatureSpec("timm:tf_efficientnet_lite0", "random:1", 64),
                  FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 96),
                  FeatureSpec("timm:tf_efficientnet_lite0", "random:0", 64, ()),
                  FeatureSpec("timm:tf_efficientnet_lite1", "random:0", 64)]:
        assert fingerprint(other) != first, other
    monkeypatch.setattr(FeatureSpec, "library", lambda self: "timm 9.9.9")
    assert fingerprint(spec) != first


def test_timm_pretrained_weights_are_named_by_the_backbone_s_tag_or_the_weights():
    assert FeatureSpec("timm:convnext_tiny.fb_in22k", "DEFAULT").timm_weights_model == "convnext_tiny.fb_in22k"
    assert FeatureSpec("timm:convnext_tiny", "fb_in22k").timm_weights_model == "convnext_tiny.fb_in22k"
    with pytest.raises(InputError, match="timm has no pretrained weights 'in99k' for convnext_tiny"):
        _ = FeatureSpec("timm:convnext_tiny", "in99k").timm_weights_model
    with pytest.raises(InputError, match="backbone timm:convnext_tiny.fb_in1k names its weights' tag fb_in1k"):
        _ = FeatureSpec("timm:convnext_tiny.fb_in1k", "fb_in22k").timm_weights_model


def test_timm_weights_not_cached_offline_are_refused_naming_the_file_to_place(tmp_path):
    probe = ("from imagepipe.featurizer import FeatureSpec; from imagepipe.featurizer.weights import resolve_weights; "
             "resolve_weights(FeatureSpec('timm:convnext_tiny.fb_in22k', 'DEFAULT', 64))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})

    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("imagepipe.errors.InputError: weights of timm:convnext_tiny.fb_in22k are not in the "
                              "Hugging Face cache; at install time run ")
    assert "hf download timm/convnext_tiny.fb_in22k model.safetensors" in message
    assert f"{tmp_path}/hub/models--timm--convnext_tiny.fb_in22k" in message
