"""The pinned jars: jars.lock read, fetched from a Maven repository layout (here a local one, by file:// URL) into the
cache only when their sha256 is the pinned one, and refused in one line when missing."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from imagepipe import jars
from imagepipe.errors import InputError


def _repository_with(tmp_path, content: bytes, sha256: str) -> str:
    """A Maven layout holding one jar, and a lock pinning it at sha256; the repository's URL."""
    folder = tmp_path / "repository" / "org" / "example" / "thing" / "1.0"
    folder.mkdir(parents=True)
    (folder / "thing-1.0.jar").write_bytes(content)
    (tmp_path / "jars.lock").write_text(f"# a comment\norg.example:thing:1.0 {sha256}\n")
    return (tmp_path / "repository").as_uri()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_JARS_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("IMAGEPIPE_JARS_LOCK", str(tmp_path / "jars.lock"))
    return tmp_path / "cache"


def test_the_projects_lock_pins_iceberg_s3a_and_the_catalog_drivers_each_with_a_sha256(monkeypatch):
    monkeypatch.delenv("IMAGEPIPE_JARS_LOCK", raising=False)
    pinned = {f"{jar.group}:{jar.artifact}": jar for jar in jars.pinned()}
    assert {"org.apache.hadoop:hadoop-aws", "software.amazon.awssdk:bundle", "org.xerial:sqlite-jdbc",
            "org.postgresql:postgresql"} < set(pinned)
    assert any(name.startswith("org.apache.iceberg:iceberg-spark-runtime-") for name in pinned)
    assert all(len(jar.sha256) == 64 and int(jar.sha256, 16) >= 0 for jar in pinned.values())


def test_a_jar_with_its_pinned_checksum_is_placed_and_named_by_paths(tmp_path, cache):
    content = b"PK\x03\x04 a jar"
    repository = _repository_with(tmp_path, content, hashlib.sha256(content).hexdigest())

    jars.fetch(repository)

    assert jars.paths() == [str(cache / "thing-1.0.jar")]
    assert (cache / "thing-1.0.jar").read_bytes() == content


def test_a_jar_whose_checksum_differs_is_refused_and_not_kept(tmp_path, cache):
    repository = _repository_with(tmp_path, b"tampered", "0" * 64)

    with pytest.raises(InputError, match=r"thing-1.0.jar has sha256 \w+, not the 0{64} pinned in .*nothing was "
                                         "installed"):
        jars.fetch(repository)
    assert list(cache.iterdir()) == []


def test_a_job_without_the_fetched_jars_says_what_to_run(tmp_path, cache):
    _repository_with(tmp_path, b"never fetched", "0" * 64)

    with pytest.raises(InputError, match=r"Spark's jars thing-1.0.jar are not in .*cache: run `make install`"):
        jars.paths()


class _CutOffOnce(http.server.BaseHTTPRequestHandler):
    """Serves the jar, but the first response promises more bytes than it sends and closes the connection."""
    content = b"PK\x03\x04 served over HTTP"
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.content) + (100 if self.requests == 1 else 0)))
        self.end_headers()
        self.wfile.write(self.content)
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_download_cut_off_part_way_is_tried_again_and_placed_whole(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(jars, "RETRY_PAUSE_S", 0.0)
    (tmp_path / "jars.lock").write_text(f"org.example:thing:1.0 {hashlib.sha256(_CutOffOnce.content).hexdigest()}\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutOffOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        jars.fetch(f"http://127.0.0.1:{server.server_port}/maven2")
    finally:
        server.shutdown()

    assert _CutOffOnce.requests == 2
    assert (cache / "thing-1.0.jar").read_bytes() == _CutOffOnce.content


def test_a_repository_that_never_answers_is_refused_in_one_line(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(jars, "RETRY_PAUSE_S", 0.0)
    _repository_with(tmp_path, b"never served", "0" * 64)

    with pytest.raises(InputError, match=r"thing-1.0.jar could not be downloaded .* after 4 attempts: check the "
                                         "network or IMAGEPIPE_MAVEN_REPOSITORY"):
        jars.fetch((tmp_path / "elsewhere").as_uri())
    assert list(cache.iterdir()) == []
