"""The --py-files archive: the library's sources and nothing else, one file per version of the code."""

from __future__ import annotations

import shutil
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
    assert all(name.endswith(".py") for name in names)
    # The same code gives the same file; a change gives a new one, and the old one stays for tasks still using it.
    assert shipping.build_archive(package, tmp_path / "out") == first
    (package / "settings.py").write_text((package / "settings.py").read_text() + "\n# changed\n")
    second = shipping.build_archive(package, tmp_path / "out")
    assert second != first and first.exists()
    assert b"# changed" in zipfile.ZipFile(second).read("imagepipe/settings.py")
