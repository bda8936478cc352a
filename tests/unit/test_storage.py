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


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temporary_file(tmp_path):
    target = tmp_path / "archive.zip"
    storage.atomic_write(target, b"whole")

    with pytest.raises(OSError, match="disk full"), storage.atomic_file(target) as temporary:
        temporary.write_bytes(b"half")
        raise OSError("disk full")

    assert target.read_bytes() == b"whole"
    assert [path.name for path in tmp_path.iterdir()] == ["archive.zip"]


# --- stores: the same behaviour on a path and (tests/s3/test_storage_on_object_storage.py) on S3 -----------------


@pytest.fixture
def store(tmp_path):
    return storage.open_store(str(tmp_path / "root"))


def test_a_store_reads_what_it_wrote_and_none_where_nothing_is(store):
    store.write_json("runs/r1.json", {"version": 1})

    assert store.get("runs/r1.json").data == b'{\n  "version": 1\n}\n'
    assert store.read_json("runs/r1.json") == {"version": 1}
    assert store.get("runs/r2.json") is None
    assert store.read_json("runs/r2.json") is None


def test_a_store_creates_a_key_only_if_it_is_absent_when_asked(store):
    store.put("champion.json", b"first", expect=None)

    with pytest.raises(storage.Conflict):
        store.put("champion.json", b"second", expect=None)
    assert store.get("champion.json").data == b"first"


def test_a_store_replaces_only_the_content_it_read_when_asked(store):
    store.put("champion.json", b"first")
    read = store.get("champion.json")
    store.put("champion.json", b"second", expect=read.tag)

    with pytest.raises(storage.Conflict):
        store.put("champion.json", b"third", expect=read.tag)  # the tag of what is no longer there
    with pytest.raises(storage.Conflict):
        store.put("absent.json", b"x", expect=read.tag)
    assert store.get("champion.json").data == b"second"
    assert store.get("absent.json") is None


def test_a_store_lists_the_names_under_a_key_and_deletes_a_whole_tree(store):
    for key in ("versions/1/manifest.json", "versions/1/model/part-0", "versions/2/manifest.json", "versions_old/x"):
        store.put(key, b"x")
    store.put("champion.json", b"{}", expect=None)

    assert store.list("versions") == ["1", "2"]
    assert store.list("versions/1") == ["manifest.json", "model"]
    assert store.list("") == ["champion.json", "versions", "versions_old"]
    assert store.list("nothing") == []
    assert store.exists("versions") and store.exists("versions/1/manifest.json")
    assert not store.exists("version") and not store.exists("versions/3")
    store.delete("versions/1")
    store.delete("nothing")
    assert store.list("versions") == ["2"]
    assert store.exists("versions_old/x")
