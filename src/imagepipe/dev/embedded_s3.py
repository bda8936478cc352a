"""The embedded S3 endpoint of the laptop stack: moto's server mode on 127.0.0.1.

    python -m imagepipe.dev.embedded_s3 start     start it in the background (no-op when running) and print its env
    python -m imagepipe.dev.embedded_s3 env       print `export ...` lines for a shell: eval "$(python -m ... env)"
    python -m imagepipe.dev.embedded_s3 seed      write the sample image set into s3://imagepipe-samples/images/
    python -m imagepipe.dev.embedded_s3 stop      stop it

It keeps objects in memory only: stopping it loses every bucket. Credentials are made up at each start (the server
accepts any) and written, with the endpoint, to an env file in the ignored data folder.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from imagepipe import settings, storage

DEFAULT_PORT = 9100


def state_dir() -> Path:
    return settings.data_dir() / "s3"


def _env_file() -> Path:
    return state_dir() / "env.sh"


def _pid_file() -> Path:
    return state_dir() / "moto.pid"


def running_pid() -> int | None:
    try:
        pid = int(_pid_file().read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def environment(port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": f"imagepipe-{secrets.token_hex(4)}",
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def serve(port: int, log_path: Path) -> subprocess.Popen:
    """Start moto's S3 server on 127.0.0.1:port in its own session and wait until it answers."""
    moto_server = Path(sys.executable).with_name("moto_server")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded S3 exited at start; see {log_path}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"embedded S3 did not answer on port {port} within 30 s; see {log_path}")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start(port: int) -> None:
    if running_pid() is not None:
        print(f"embedded S3 already running (pid {running_pid()}); env in {_env_file()}", file=sys.stderr)
        return
    if not _port_free(port):
        sys.exit(f"embedded_s3: error: port {port} is taken; stop what uses it or pass --port")
    state_dir().mkdir(parents=True, exist_ok=True)
    process = serve(port, state_dir() / "moto.log")
    env_lines = [f"export {name}={value}" for name, value in environment(port).items()]
    # Whole or absent, and private from its first byte (atomic_write's temporary file is created 0600): it holds the
    # credentials. The pid file comes last: with it the endpoint counts as running, its env file already there.
    storage.atomic_write(_env_file(), ("\n".join(env_lines) + "\n").encode())
    storage.atomic_write(_pid_file(), str(process.pid).encode())
    print(
        f"embedded S3 listening on http://127.0.0.1:{port} (pid {process.pid}). It keeps objects IN MEMORY ONLY: "
        f"stopping it loses every bucket. Shell env: eval \"$(python -m imagepipe.dev.embedded_s3 env)\"",
        file=sys.stderr,
    )


def stop() -> None:
    pid = running_pid()
    if pid is None:
        print("embedded S3 is not running", file=sys.stderr)
        return
    os.killpg(pid, signal.SIGTERM)
    _pid_file().unlink(missing_ok=True)
    print(f"embedded S3 stopped (pid {pid}); its objects are gone", file=sys.stderr)


def is_running() -> bool:
    return running_pid() is not None and _env_file().exists()


def load_env() -> dict[str, str]:
    """The running embedded endpoint's variables, read from its env file."""
    if not is_running():
        sys.exit("embedded_s3: error: embedded S3 is not running; start it with `make s3-start`")
    pairs = (line.removeprefix("export ").split("=", 1) for line in _env_file().read_text().splitlines() if line)
    return dict(pairs)


def seed(source_uri: str, per_class: int, seed_value: int) -> None:
    from imagepipe.dev import sample_data
    from imagepipe.object_store import parse_s3_uri, s3_client

    os.environ.update(load_env())
    bucket, prefix = parse_s3_uri(source_uri)
    count = sample_data.upload(s3_client(), bucket, prefix, sample_data.generate(per_class, seed_value))
    print(f"seeded {count} sample images into {source_uri}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imagepipe.dev.embedded_s3", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="start the endpoint in the background")
    start_parser.add_argument("--port", type=int, default=int(os.environ.get("IMAGEPIPE_S3_PORT", DEFAULT_PORT)))
    commands.add_parser("stop", help="stop the endpoint (its objects are lost)")
    env_parser = commands.add_parser("env", help="print export lines for the endpoint and its credentials")
    env_parser.add_argument("--if-running", action="store_true", help="print nothing (instead of failing) when stopped")
    seed_parser = commands.add_parser("seed", help="write the sample image set")
    seed_parser.add_argument("--source-uri", default=settings.default_source_uri())
    seed_parser.add_argument("--per-class", type=int, default=100)
    seed_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "start":
        start(args.port)
    elif args.command == "stop":
        stop()
    elif args.command == "env":
        if args.if_running and not is_running():
            return
        print("\n".join(f"export {name}={value}" for name, value in load_env().items()))
    else:
        seed(args.source_uri, args.per_class, args.seed)


if __name__ == "__main__":
    main()
