"""The --py-files archive: the library core's sources and nothing else, one file per version of the code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from imagepipe import shipping


def test_archive_holds_the_package_sources_and_is_named_by_its_content(tmp_path):
    package = tmp_path / "src" / "imagepipe"
    shutil.copytree(shipping.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"\0")

    first = shipping.build_archive(package, tmp_path / "out")
    names = zipfile.ZipFile(first).namelist()
    assert "imagepipe/__init__.py" in names and "imagepipe/shipping.py" in names
    assert "imagepipe/featurizer/timm_models.txt" in names  # what an executor's FeatureSpec checks names with
    assert all(name.endswith((".py", ".txt")) for name in names)
    # The core only: no executor imports the Airflow layer or the laptop's tools.
    assert not [name for name in names if name.startswith(("imagepipe/airflow/", "imagepipe/dev/"))]
    assert "imagepipe/drift.py" in names and "imagepipe/finetune/train.py" in names
    # The same code gives the same file; a change gives a new one, and the old one stays for tasks still using it.
    assert shipping.build_archive(package, tmp_path / "out") == first
    (package / "settings.py").write_text((package / "settings.py").read_text() + "\n# changed\n")
    second = shipping.build_archive(package, tmp_path / "out")
    assert second != first and first.exists()
    assert b"# changed" in zipfile.ZipFile(second).read("imagepipe/settings.py")


def test_the_archive_alone_checks_timm_backbone_names(tmp_path):
    archive = shipping.build_archive(shipping.PACKAGE_DIR, tmp_path)
    probe = ("from imagepipe.featurizer import backbones; assert backbones.__file__.startswith(" + repr(str(archive))
             + "); print(backbones.check_known('timm:tf_efficientnet_lite0'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(archive)}, cwd=tmp_path)

    assert result.stdout.strip() == "timm:tf_efficientnet_lite0", result.stderr
