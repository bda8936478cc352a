"""S3-compatible object storage through boto3: AWS, MinIO or the embedded endpoint.

Credentials come from the standard AWS chain; the endpoint from AWS_ENDPOINT_URL (honoured by boto3 itself) or an
explicit argument. Retries of 5xx, throttling and dropped connections are botocore's standard retry mode.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from imagepipe.errors import InputError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    last_modified: datetime


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key or prefix) of an s3:// or s3a:// URI."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3", "s3a") or not rest or rest.startswith("/"):
        raise ValueError(f"{uri!r} is not an S3 URI; write it as s3://bucket/prefix/")
    bucket, _, key = rest.partition("/")
    return bucket, key


@functools.lru_cache(maxsize=8)
def s3_client(endpoint_url: str | None = None, max_pool_connections: int = 10):
    """A boto3 S3 client with botocore's standard retry mode and a connection pool of the given size.

    Cached per process: executors reuse one client (and its pool) across tasks.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 8},
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


@contextlib.contextmanager
def s3_errors(action: str):
    """Turn what no retry can fix (no credentials, no bucket, access denied) into an InputError saying what to fix;
    `action` names the call, e.g. "list s3://bucket/prefix". What botocore's retries could not get past (an
    unreachable endpoint, 5xx, throttling) stays a fault, which Airflow retries with backoff."""
    from botocore.exceptions import ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise InputError(
            # No word may follow the secret key's name: Spark's task log masks it as that name's value.
            'no S3 credentials found: for the embedded endpoint run eval "$(make -s s3-env)"; elsewhere set '
            "AWS_PROFILE, or AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY"
        ) from None
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500 or status == 429:
            raise
        code = error.response.get("Error", {}).get("Code", "error")
        raise InputError(f"cannot {action}: {code}; check the bucket name and its permissions") from None


def list_objects(client, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    """Every object under prefix, page by page; what stops the listing altogether is an InputError (see s3_errors)."""
    paginator = client.get_paginator("list_objects_v2")
    with s3_errors(f"list s3://{bucket}/{prefix}"):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["ETag"].strip('"'), item["Size"], item["LastModified"])


def get_object_bytes(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()
