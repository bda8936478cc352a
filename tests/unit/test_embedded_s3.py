"""The embedded S3 endpoint of make demo: started, its env file private and complete, stopped."""

from __future__ import annotations

import socket
import stat

import pytest

from imagepipe.dev import embedded_s3


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_DATA_DIR", str(tmp_path))
    return tmp_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_start_writes_a_private_env_file_with_the_endpoint_and_stop_ends_it(data_dir):
    port = free_port()
    embedded_s3.start(port)
    try:
        env_file = data_dir / "s3" / "env.sh"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # it holds the credentials
        env = embedded_s3.load_env()
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
        assert embedded_s3.is_running()
    finally:
        embedded_s3.stop()
    assert not embedded_s3.is_running()
