"""Small lake documents on s3:// through the real S3 endpoint."""

from __future__ import annotations

from imagepipe import storage
from imagepipe.object_store import s3_client


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
