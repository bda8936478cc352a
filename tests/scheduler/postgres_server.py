"""A real PostgreSQL server for Airflow's metadata database, started from Debian's postgresql binaries (initdb,
pg_ctl) on a free local port and stopped afterwards, as production runs Airflow on it.

    with PostgresServer() as server:
        AirflowStack(root, s3_env, sql_alchemy_conn=server.sqlalchemy_url("airflow"))

PostgreSQL refuses to run as root: when the tests do, the server runs as the `postgres` system account the Debian
packages create, in a data folder that account owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .airflow_stack import Service, free_port

USER = "airflow"


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, or under Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists():
            return Path(folder)
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package "
                       "(apt-get install postgresql) or put them on PATH")


class PostgresServer(Service):
    def __init__(self):
        self.bin = server_binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="imagepipe-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        # Trust on 127.0.0.1 only, no fsync: a throwaway server for one test session.
        self._run("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", "start", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c max_connections=200")

    def create_database(self, name: str) -> None:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", "postgres", "-v",
                  "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        binary = self.bin / program
        command = [str(binary if binary.exists() else program), *args]
        if self.account is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}\n{log}")
