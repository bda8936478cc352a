"""The registry suites of tests/unit (versions, champion, command line), with the registry rooted at s3:// on the S3
endpoint: conditional writes (If-None-Match, If-Match) instead of a file lock."""

from __future__ import annotations

import pytest
from unit.registry_helpers import MODEL
from unit.test_registry_champion import *  # noqa: F401,F403  (the suites, collected again here against object storage)
from unit.test_registry_cli import *  # noqa: F401,F403
from unit.test_registry_versions import *  # noqa: F401,F403

from imagepipe.errors import InputError
from imagepipe.object_store import s3_client
from imagepipe.registry import Registry


class S3Backend:
    """Reads and writes a registry's objects behind its back, as another client of the bucket would."""

    def __init__(self, bucket: str):
        self.bucket = bucket
        self.root = f"s3://{bucket}/registry"

    def _key(self, key: str) -> str:
        return f"registry/{MODEL}/{key}"

    def write(self, key: str, data: bytes) -> None:
        s3_client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def read(self, key: str) -> bytes:
        return s3_client().get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def delete(self, key: str) -> None:
        s3_client().delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> list[str]:
        listed = s3_client().list_objects_v2(Bucket=self.bucket, Prefix=self._key(prefix) + "/")
        return sorted(item["Key"].removeprefix(self._key("")) for item in listed.get("Contents", []))


@pytest.fixture
def backend(s3_bucket):
    return S3Backend(s3_bucket)


def test_a_registry_in_a_missing_bucket_is_one_clear_error(s3_endpoint):
    with pytest.raises(InputError, match="cannot read s3://no-such-bucket-here/registry/image_classifier/"
                                         "champion.json: NoSuchBucket"):
        Registry("s3://no-such-bucket-here/registry", MODEL).champion()
