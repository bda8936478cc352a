"""Small JSON and text artifacts under a lake or registry URI: a local path, file://, or s3:// / s3a://.

Spark reads and writes the tables; this module handles the small documents beside them (reports, pointers, run
records). Local writes are atomic (write to a temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(part.strip("/") for part in parts)])


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def write_text(uri: str, text: str) -> None:
    if is_s3(uri):
        from imagepipe.object_store import parse_s3_uri, s3_client

        bucket, key = parse_s3_uri(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=text.encode())
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=f".{path.name}.") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def read_text(uri: str, endpoint_url: str | None = None) -> str | None:
    """The document's text, or None when there is none."""
    if is_s3(uri):
        from imagepipe.object_store import parse_s3_uri, s3_client

        bucket, key = parse_s3_uri(uri)
        client = s3_client(endpoint_url)
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except client.exceptions.NoSuchKey:
            return None
    path = local_path(uri)
    return path.read_text() if path.exists() else None


def write_json(uri: str, document) -> None:
    write_text(uri, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def read_json(uri: str):
    text = read_text(uri)
    return None if text is None else json.loads(text)


def exists(uri: str) -> bool:
    """Whether a document, or a folder holding anything, exists at uri."""
    if is_s3(uri):
        from imagepipe.object_store import parse_s3_uri, s3_client

        bucket, key = parse_s3_uri(uri)
        client = s3_client()
        # The folder's own prefix with its slash: `images` must not be taken for `images_old/...`.
        if client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1).get("KeyCount", 0):
            return True
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except client.exceptions.ClientError as error:
            # Only "not found" means absent; a denied or failing request must not pass for an empty lake.
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
    return local_path(uri).exists()


def spark_path(uri: str) -> str:
    """The form of uri that Spark's Hadoop filesystem layer reads (s3:// becomes s3a://)."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri
