"""Small lake documents on s3:// through the real S3 endpoint, and the stores' behaviour of tests/unit/test_storage.py
on an S3 store: conditional puts are If-None-Match and If-Match there."""

from __future__ import annotations

import pytest
from unit.test_storage import (  # noqa: F401 (the store suite, collected again here against object storage)
    test_a_store_creates_a_key_only_if_it_is_absent_when_asked,
    test_a_store_lists_the_names_under_a_key_and_deletes_a_whole_tree,
    test_a_store_reads_what_it_wrote_and_none_where_nothing_is,
    test_a_store_replaces_only_the_content_it_read_when_asked,
)

from imagepipe import storage
from imagepipe.errors import InputError
from imagepipe.object_store import s3_client


@pytest.fixture
def store(s3_bucket):
    return storage.open_store(f"s3://{s3_bucket}/root")


def test_documents_round_trip_and_folders_are_told_apart_from_siblings(s3_bucket):
    root = f"s3://{s3_bucket}/lake"
    storage.write_json(storage.join(root, "runs", "r1", "window.json"), {"start": "a", "end": "b"})
    s3_client().put_object(Bucket=s3_bucket, Key="lake/images_old/x.parquet", Body=b"x")

    assert storage.read_json(storage.join(root, "runs", "r1", "window.json")) == {"start": "a", "end": "b"}
    assert storage.read_json(storage.join(root, "runs", "r2", "window.json")) is None
    assert storage.exists(storage.join(root, "runs"))
    assert storage.exists(storage.join(root, "runs", "r1", "window.json"))
    assert not storage.exists(storage.join(root, "images"))
    assert storage.spark_path(root) == f"s3a://{s3_bucket}/lake"


def test_a_document_in_a_missing_bucket_is_one_clear_error(s3_endpoint):
    with pytest.raises(InputError, match="cannot read s3://no-such-bucket-here/lake/x.json: NoSuchBucket"):
        storage.read_json("s3://no-such-bucket-here/lake/x.json")
    with pytest.raises(InputError, match="cannot list s3://no-such-bucket-here/lake/runs: NoSuchBucket"):
        storage.exists("s3://no-such-bucket-here/lake/runs")
