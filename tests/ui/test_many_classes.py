"""A version page of a model with a few hundred classes, through Airflow's own app: the long per-class table and the
file list fold into blocks that scroll, the gallery stays at its caps, and the page stays small."""

from __future__ import annotations

import re

import pytest

from imagepipe import gallery, report
from imagepipe.gate import Thresholds, decide
from imagepipe.lake import Lake
from imagepipe.registry import Registry

from .model_records import MODEL, many_classes
from .test_pages import version_url

CLASSES = 400


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("many") / "lake"))
    registry = Registry(lake.registry, MODEL)
    version = registry.allocate_version("manual__many")
    candidate, shown = many_classes(CLASSES)
    metadata = {"version": version, "model_name": MODEL, "labels": candidate["confusion_matrix"]["labels"],
                "fingerprint": "resnet18-0123456789abcdef", "model": {"classifier": "logistic_regression"}}
    registry.write_document(version, "metadata", metadata)
    thumbnail = gallery.thumbnail(_jpeg())
    registry.write_files(version, {row["thumbnail"]: thumbnail for row in shown["misclassified"] + shown["correct"]})
    registry.write_document(version, "metrics", {"candidate": candidate, "champion": None, "champion_version": None,
                                                 "gallery": shown})
    verdict = decide(candidate, None, Thresholds())
    registry.write_files(version, report.files(metadata, candidate, None, verdict, shown))
    registry.write_verdict(version, verdict)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEPIPE_LAKE_ROOT", lake.root)
        patch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
        yield registry


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_the_version_page_of_a_few_hundred_classes_folds_its_long_tables_and_caps_its_gallery(viewer, many):
    page = viewer.get(version_url(1))

    assert page.status_code == 200
    assert len(page.text) < 300_000
    per_class = re.search(r"<h2>Per class \(test split\)</h2>\s*<details><summary>400 rows</summary>"
                          r'<div class="scroll">\s*<table>(.*?)</table>', page.text, re.S)
    assert per_class and per_class.group(1).count("<tr>") == CLASSES + 1
    assert re.search(r"<h2>Files</h2>\s*<details><summary>\d+ rows</summary>", page.text)
    assert page.text.count("<details>") == 2  # the short tables stay open
    thumbnails = re.findall(r'<img class="thumbnail" src="([^"]+)"', page.text)
    assert len(thumbnails) == gallery.MAX_MISCLASSIFIED + gallery.MAX_CORRECT
    assert "The 60 most confident of 900 mistakes" in page.text
    assert "for the 60 classes with the lowest F1 (of 400)" in page.text
    assert viewer.get(thumbnails[0]).headers["content-type"] == "image/jpeg"
