"""One storage layer for what the pipeline keeps beside its Spark tables: the lake's documents (run records, the
ingest watermark, feature-space notes), the model registry and the reports in it.

A root is a local path, a file:// URI or s3:// / s3a://bucket/prefix; open_store(root) is the Store under it, whose
keys are relative paths. Both kinds of Store behave alike:
- get(key) is the bytes and their tag, or None when nothing is there. The tag is the object's ETag on S3, the file's
  sha256 on a path.
- put(key, data, expect=None) writes only if the key does not exist, put(key, data, expect=tag) only if the key still
  has that tag; otherwise it raises Conflict and writes nothing. On S3 these are puts with If-None-Match: * and
  If-Match: <ETag>; on a path the comparison and an atomic rename are made under a file lock (<root>/.lock).
  Unconditional puts take no lock (the rename is atomic): a key written conditionally must always be.
- A refused S3 call (no credentials, no bucket, access denied) is an InputError saying what to fix; one that kept
  failing after botocore's retries (5xx, throttling, no endpoint) stays botocore's error, a fault that the task's own
  retries may get past (object_store.s3_errors).

read_json, write_json, read_text, write_text and exists do the same for one document named by its whole URI. Local
files are written by atomic_write: whole or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from imagepipe.object_store import parse_s3_uri, s3_client, s3_errors

_ANY = object()  # put() without a condition


class Conflict(Exception):
    """A conditional write found the key in another state than it expected; nothing was written."""


class Stored(NamedTuple):
    data: bytes
    tag: str


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(part.strip("/") for part in parts)])


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def spark_path(uri: str) -> str:
    """The form of uri that Spark's Hadoop filesystem layer reads (s3:// becomes s3a://)."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def json_bytes(document) -> bytes:
    """A document as the lake and the registry keep it: indented, keys sorted, datetimes as text."""
    return (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode()


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the file at; when the block ends, the file is flushed to disk and
    renamed over `path`, so readers (another task, whoever finds the folder after a crash) see the old file or the
    new one, never part of one. If the block fails, the temporary file is removed and `path` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        yield Path(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def atomic_write(path: Path, data: bytes) -> None:
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)


class _Store:
    where: str

    def read_json(self, key: str):
        found = self.get(key)
        return None if found is None else json.loads(found.data)

    def write_json(self, key: str, document, expect=_ANY) -> None:
        self.put(key, json_bytes(document), expect)


class LocalStore(_Store):
    """Keys are paths under a folder; a file's tag is its sha256."""

    def __init__(self, base: Path):
        self.base = base
        self.where = str(base)

    @contextlib.contextmanager
    def _locked(self):
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def get(self, key: str) -> Stored | None:
        path = self.base / key
        if not path.is_file():
            return None
        data = path.read_bytes()
        return Stored(data, hashlib.sha256(data).hexdigest())

    def put(self, key: str, data: bytes, expect=_ANY) -> None:
        """Write key; expect None: only if it does not exist; expect a tag: only if it still has that tag."""
        if expect is _ANY:
            atomic_write(self.base / key, data)
            return
        with self._locked():
            current = self.get(key)
            if (current is None) != (expect is None) or (current is not None and current.tag != expect):
                raise Conflict(key)
            atomic_write(self.base / key, data)

    def list(self, key: str = "") -> list[str]:
        """Names of the files and folders directly under key; hidden ones (the lock, unfinished writes) left out."""
        folder = self.base / key
        if not folder.is_dir():
            return []
        return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))

    def exists(self, key: str) -> bool:
        """Whether a file, or a folder, is at key."""
        return (self.base / key).exists()

    def delete(self, key: str) -> None:
        """Remove key and everything under it."""
        path = self.base / key
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class S3Store(_Store):
    """Keys are object keys under a prefix; an object's tag is its ETag."""

    # A condition that does not hold, a concurrent conditional write, and (If-Match) a key that is not there at all.
    CONFLICTS = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = s3_client(endpoint_url)
        self.where = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _errors(self, action: str, key: str):
        return s3_errors(f"{action} s3://{self.bucket}/{self._key(key)}")

    def get(self, key: str) -> Stored | None:
        with self._errors("read", key):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                return None
            return Stored(response["Body"].read(), response["ETag"])

    def head(self, key: str) -> str | None:
        """The object's ETag without reading it, or None when there is no such object."""
        with self._errors("read", key):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ETag"]
            except self.client.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return None
                raise

    def put(self, key: str, data: bytes, expect=_ANY) -> None:
        """Write key; expect None: only if it does not exist (If-None-Match); a tag: only if it still has it
        (If-Match)."""
        condition = {} if expect is _ANY else {"IfNoneMatch": "*"} if expect is None else {"IfMatch": expect}
        with self._errors("write", key):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
            except self.client.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") in self.CONFLICTS:
                    raise Conflict(key) from None
                raise

    def download(self, key: str, path: Path) -> None:
        """Copy the object to a local file, whole or not at all (big objects: streamed, in parts)."""
        with self._errors("read", key), atomic_file(path) as temporary:
            self.client.download_file(self.bucket, self._key(key), str(temporary))

    def _folder(self, key: str) -> str:
        # The folder's own prefix with its slash: `images` must not be taken for `images_old/...`.
        folder = self._key(key).rstrip("/")
        return f"{folder}/" if folder else ""

    def _pages(self, key: str, **options):
        with self._errors("list", key):
            yield from self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._folder(key), **options
            )

    def list(self, key: str = "") -> list[str]:
        """Names of the objects and folders directly under key."""
        names = set()
        for page in self._pages(key, Delimiter="/"):
            names.update(item["Prefix"].rstrip("/").rsplit("/", 1)[-1] for item in page.get("CommonPrefixes", []))
            names.update(item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", []))
        return sorted(names)

    def exists(self, key: str) -> bool:
        """Whether an object, or a folder holding any, is at key."""
        with self._errors("list", key):
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._folder(key), MaxKeys=1)
        return bool(listed.get("KeyCount", 0)) or self.head(key) is not None

    def delete(self, key: str) -> None:
        """Remove the object at key and every object under it."""
        for page in self._pages(key):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                with self._errors("delete under", key):
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


Store = LocalStore | S3Store


def open_store(root: str, endpoint_url: str | None = None) -> Store:
    """The store whose keys are paths under root; endpoint_url picks another S3 endpoint than AWS_ENDPOINT_URL's."""
    if is_s3(root):
        bucket, prefix = parse_s3_uri(root)
        return S3Store(bucket, prefix, endpoint_url)
    return LocalStore(local_path(root))


def locate(uri: str, endpoint_url: str | None = None) -> tuple[Store, str]:
    """The store holding the document at uri, and its key there."""
    if is_s3(uri):
        bucket, key = parse_s3_uri(uri)
        return S3Store(bucket, "", endpoint_url), key
    path = local_path(uri)
    return LocalStore(path.parent), path.name


def read_text(uri: str, endpoint_url: str | None = None) -> str | None:
    """The document's text, or None when there is none."""
    store, key = locate(uri, endpoint_url)
    found = store.get(key)
    return None if found is None else found.data.decode()


def write_text(uri: str, text: str) -> None:
    store, key = locate(uri)
    store.put(key, text.encode())


def read_json(uri: str):
    store, key = locate(uri)
    return store.read_json(key)


def write_json(uri: str, document) -> None:
    store, key = locate(uri)
    store.write_json(key, document)


# Reads in flight at once by read_each: under the S3 client's pool of 10 connections (object_store.s3_client).
READERS = 8


def read_each(read, items) -> list:
    """read(item) for each item, READERS at a time, in the items' order: each is a few small object reads, which on
    object storage wait on the network (some 20 ms each), so a page of rows costs a few round trips, not one per
    object."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(read, items))


def exists(uri: str) -> bool:
    """Whether a document, or a folder holding anything, exists at uri."""
    store, key = locate(uri)
    return store.exists(key)
