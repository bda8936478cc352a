"""The backbones on offer: torchvision's six and timm's models, whose names the form checks without importing timm."""

import timm

from imagepipe import params
from imagepipe.airflow import forms
from imagepipe.featurizer import backbones


def test_the_timm_names_file_lists_the_installed_timm_s_models():
    # Regenerate with `python -m imagepipe.featurizer.timm_backbone > src/imagepipe/featurizer/timm_models.txt`.
    listed = set(timm.list_models()) | set(timm.list_models(pretrained=True))

    assert set(backbones.timm_models()) == listed
    assert f"# timm {timm.__version__}:" in (backbones.resources.files(backbones.__package__)
                                               / backbones.TIMM_NAMES_FILE).read_text().splitlines()[0]


def test_the_form_offers_torchvision_and_timm_backbones_and_refuses_others():
    schema = forms.field(params.BACKBONE).schema

    assert {"resnet18", "vit_b_16", "timm:tf_efficientnet_lite0", "timm:convnext_tiny.fb_in22k",
            "timm:vit_small_patch14_dinov2.lvd142m"} <= set(schema["enum"])
    assert "timm:resnet_nope" not in schema["enum"] and "vgg16" not in schema["enum"]
