"""A model's versions in the registry on a local path: numbers, write-once files checked against their sha256, and
Spark models saved and loaded through them (tests/s3/test_registry_on_object_storage.py runs them on S3 too)."""

from __future__ import annotations

import json

import pytest

from imagepipe.errors import InputError
from imagepipe.registry import Registry
from unit.registry_helpers import *  # noqa: F403 (the fixtures backend, root, tiny_model)
from unit.registry_helpers import MODEL, failing_verdict, passing_verdict, registry_with_versions, saved_version


def test_allocate_version_numbers_runs_one_two_three_and_reuses_a_retried_runs_number(root):
    registry = Registry(root, MODEL)

    assert [registry.allocate_version(run) for run in ("run-a", "run-b", "run-c")] == [1, 2, 3]
    assert Registry(root, MODEL).allocate_version("run-b") == 2
    assert registry.version_for_run("run-c") == 3
    assert registry.versions() == [1, 2, 3]
    assert Registry(root, "other_model").allocate_version("run-a") == 1


def test_metadata_of_an_incomplete_or_unknown_version_is_an_input_error(root):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")  # allocated, but its metadata.json was never written

    with pytest.raises(InputError, match=f"{MODEL} version 1 is missing or incomplete"):
        registry.metadata(version)
    with pytest.raises(InputError, match=f"{MODEL} version 7 is missing or incomplete"):
        registry.metadata(7)


def test_documents_and_files_are_recorded_with_their_sha256_and_are_write_once(root):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    registry.write_document(version, "metrics", {"accuracy": 0.9})
    registry.write_file(version, "confusion_matrix.png", png)
    registry.write_document(version, "metrics", {"accuracy": 0.9})  # a retry writing the same content: no change

    assert registry.document(version, "metrics") == {"accuracy": 0.9}
    assert registry.document(version, "verdict") is None
    assert registry.read_file(version, "confusion_matrix.png") == png
    files = registry.manifest(version)["files"]
    assert files["confusion_matrix.png"]["size"] == len(png)
    assert len(files["confusion_matrix.png"]["sha256"]) == 64
    with pytest.raises(InputError, match="already holds metrics.json with other content; versions are immutable"):
        registry.write_document(version, "metrics", {"accuracy": 0.99})
    assert registry.document(version, "metrics") == {"accuracy": 0.9}
    with pytest.raises(InputError, match="cannot name a registry file"):
        registry.write_file(version, "../escape.md", b"x")


def test_files_one_folder_deep_are_published_together_but_never_into_the_model(root):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    thumbnails = {f"thumbnails/{index}.jpg": bytes([index]) * 10 for index in range(3)}

    registry.write_files(version, thumbnails)

    assert {name: registry.read_file(version, name) for name in thumbnails} == thumbnails
    assert set(registry.manifest(version)["files"]) == set(thumbnails)
    for name in ("model/metadata/part-00000", "thumbnails/../metadata.json", "a/b/c.jpg", "thumbnails/.hidden"):
        with pytest.raises(InputError, match="cannot name a registry file"):
            registry.write_files(version, {name: b"x"})
    assert set(registry.manifest(version)["files"]) == set(thumbnails)


def test_a_file_from_a_local_path_is_published(root, tmp_path):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    report = tmp_path / "report.md"
    report.write_text("# Version 1\n")

    registry.write_file(version, "report.md", report)

    assert registry.read_file(version, "report.md") == b"# Version 1\n"


def test_a_document_changed_behind_the_registrys_back_is_refused(root, backend):
    registry = registry_with_versions(root, 1)
    backend.write("versions/1/verdict.json", json.dumps(failing_verdict(None)).encode())

    with pytest.raises(InputError, match="version 1 is corrupted: verdict.json does not match its recorded sha256"):
        registry.document(1, "verdict")


def test_several_documents_are_read_against_one_manifest_and_still_checked(root, backend):
    registry = registry_with_versions(root, 1)

    documents = registry.documents(1, ("metadata", "metrics", "verdict"))

    assert documents["verdict"].to_json() == passing_verdict(None)
    assert documents | {"verdict": None} == {"metadata": {"version": 1}, "metrics": None, "verdict": None}
    backend.write("versions/1/verdict.json", json.dumps(failing_verdict(None)).encode())
    with pytest.raises(InputError, match="version 1 is corrupted: verdict.json does not match its recorded sha256"):
        registry.documents(1, ("metadata", "verdict"), registry.manifest(1))


def indexed(model, frame) -> list[tuple]:
    return sorted((row["label"], row["index"]) for row in model.transform(frame).collect())


def test_a_saved_model_loads_after_its_checksums_are_verified(root, tiny_model):
    model, frame = tiny_model
    registry = saved_version(root, tiny_model)

    loaded = registry.load_model(1)

    assert indexed(loaded, frame) == indexed(model, frame) == [("beach", 1.0), ("forest", 0.0), ("forest", 0.0)]
    model_files = [name for name in registry.manifest(1)["files"] if name.startswith("model/")]
    assert any(name.startswith("model/stages/") for name in model_files)
    assert indexed(Registry(root, MODEL).load_model(1), frame) == indexed(model, frame)  # again, from the cache folder


def test_a_tampered_model_file_is_detected_on_load(root, backend, tiny_model):
    registry = saved_version(root, tiny_model)
    [data_file] = [key for key in backend.keys("versions/1/model/stages") if key.endswith(".parquet")]
    backend.write(data_file, backend.read(data_file) + b"tampered")

    with pytest.raises(InputError, match=f"version 1 is corrupted: {data_file.removeprefix('versions/1/')} does not "
                                         "match its recorded sha256"):
        registry.load_model(1)


def test_a_half_written_model_is_refused_on_load(root, backend, tiny_model):
    registry = saved_version(root, tiny_model)
    [part] = [key for key in backend.keys("versions/1/model/metadata") if key.rsplit("/", 1)[-1].startswith("part-")]
    backend.delete(part)

    with pytest.raises(InputError, match=f"version 1 is half-written: {part.removeprefix('versions/1/')} is recorded "
                                         "but missing"):
        registry.load_model(1)


def test_a_version_without_metadata_does_not_load(root, tiny_model):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    registry.save_model(version, tiny_model[0])  # training stopped before writing the metadata

    with pytest.raises(InputError, match="version 1 is missing or incomplete"):
        registry.load_model(version)


def test_a_retried_save_replaces_an_unsealed_model_but_a_complete_version_is_immutable(root, backend, tiny_model):
    registry = Registry(root, MODEL)
    version = registry.allocate_version("run-a")
    registry.save_model(version, tiny_model[0])
    registry.save_model(version, tiny_model[0])  # the retry of an interrupted training
    registry.write_document(version, "metadata", {"version": version})

    recorded = {name for name in registry.manifest(version)["files"] if name.startswith("model/")}
    assert recorded == {key.removeprefix("versions/1/") for key in backend.keys("versions/1/model")}
    with pytest.raises(InputError, match="version 1 is complete .* and immutable: its model cannot be replaced"):
        registry.save_model(version, tiny_model[0])
    registry.load_model(version)
