from datetime import datetime, timezone
from pathlib import Path

import pytest

from imagepipe import storage


@pytest.mark.parametrize(
    "uri, on_object_storage",
    [("s3://bucket/key", True), ("s3a://bucket/key", True), ("/data/lake", False), ("file:///data/lake", False),
     ("lake", False)],
)
def test_is_s3(uri, on_object_storage):
    assert storage.is_s3(uri) is on_object_storage


@pytest.mark.parametrize(
    "root, parts, joined",
    [
        ("s3://bucket/lake", ("images",), "s3://bucket/lake/images"),
        ("s3://bucket/lake/", ("/runs/", "r1", "window.json"), "s3://bucket/lake/runs/r1/window.json"),
        ("/data/lake", ("features", "fp/"), "/data/lake/features/fp"),
        ("file:///data/lake/", ("registry",), "file:///data/lake/registry"),
    ],
)
def test_join_puts_exactly_one_slash_between_parts(root, parts, joined):
    assert storage.join(root, *parts) == joined


@pytest.mark.parametrize("uri", ["/data/lake/x.json", "file:///data/lake/x.json"])
def test_local_path_accepts_plain_paths_and_file_uris(uri):
    assert storage.local_path(uri) == Path("/data/lake/x.json")


@pytest.mark.parametrize(
    "uri, spark_uri",
    [
        ("s3://bucket/lake", "s3a://bucket/lake"),
        ("s3a://bucket/lake", "s3a://bucket/lake"),
        ("/data/lake", "/data/lake"),
        ("file:///data/lake", "file:///data/lake"),
    ],
)
def test_spark_path_reads_s3_through_s3a(uri, spark_uri):
    assert storage.spark_path(uri) == spark_uri


def test_text_round_trips_creating_folders(tmp_path):
    uri = str(tmp_path / "a" / "b" / "note.txt")

    storage.write_text(uri, "hello\nworld")

    assert storage.read_text(uri) == "hello\nworld"
    assert (tmp_path / "a" / "b" / "note.txt").read_text() == "hello\nworld"


def test_file_uri_is_written_to_the_local_path(tmp_path):
    storage.write_text(f"file://{tmp_path}/doc.txt", "x")

    assert (tmp_path / "doc.txt").read_text() == "x"


def test_missing_document_reads_as_none(tmp_path):
    assert storage.read_text(str(tmp_path / "absent.txt")) is None
    assert storage.read_json(str(tmp_path / "absent.json")) is None


def test_write_replaces_the_document_and_leaves_no_temporary_files(tmp_path):
    uri = str(tmp_path / "doc.json")
    storage.write_json(uri, {"version": 1})

    storage.write_json(uri, {"version": 2})

    assert storage.read_json(uri) == {"version": 2}
    assert [path.name for path in tmp_path.iterdir()] == ["doc.json"]


def test_json_is_sorted_indented_and_stringifies_datetimes(tmp_path):
    uri = str(tmp_path / "doc.json")

    storage.write_json(uri, {"b": 1, "a": datetime(2026, 1, 1, tzinfo=timezone.utc)})

    assert (tmp_path / "doc.json").read_text() == '{\n  "a": "2026-01-01 00:00:00+00:00",\n  "b": 1\n}\n'
    assert storage.read_json(uri) == {"a": "2026-01-01 00:00:00+00:00", "b": 1}


def test_exists_for_documents_and_folders(tmp_path):
    storage.write_text(str(tmp_path / "runs" / "r1" / "window.json"), "{}")

    assert storage.exists(str(tmp_path / "runs" / "r1" / "window.json"))
    assert storage.exists(str(tmp_path / "runs"))
    assert storage.exists(f"file://{tmp_path}/runs")
    assert not storage.exists(str(tmp_path / "runs" / "r2"))
