"""Fixtures of the scheduler tests: Airflow started for real on the embedded S3 endpoint of the test session, its
metadata in SQLite (the laptop's default) or in a real PostgreSQL server (production's)."""

from __future__ import annotations

import os
import uuid

import pytest

from .airflow_stack import DAG_ID, AirflowStack
from .postgres_server import PostgresServer


def s3_env() -> dict[str, str]:
    return {name: os.environ[name] for name in
            ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}


def new_stack(root, sql_alchemy_conn: str | None = None, **extra_env: str) -> AirflowStack:
    """A stack whose default source is a new, empty bucket: the scheduled run that unpausing
    creates for the latest interval then finds nothing, instead of failing on a missing bucket and holding the DAG's
    one active run through its retries."""
    from imagepipe.object_store import s3_client

    bucket = f"source-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=bucket)
    return AirflowStack(root, s3_env(), sql_alchemy_conn,
                        extra_env={"IMAGEPIPE_SOURCE_URI": f"s3://{bucket}/images/", **extra_env})


@pytest.fixture
def start_airflow(tmp_path, s3_endpoint, postgres_server):
    """Start a production-shaped stack, its metadata in PostgreSQL, with extra environment (e.g. IMAGEPIPE_SCHEDULE),
    and wait until its DAG is parsed; stopped at teardown."""
    stacks = []

    def start(**extra_env: str) -> AirflowStack:
        database = f"airflow_{uuid.uuid4().hex[:8]}"
        postgres_server.create_database(database)
        stack = new_stack(tmp_path / f"stack{len(stacks)}", postgres_server.sqlalchemy_url(database), **extra_env)
        stacks.append(stack)
        stack.start()
        stack.wait_for_dag(DAG_ID)
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="session")
def postgres_server():
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory, s3_endpoint):
    """One stack with the DAG's defaults and the laptop's SQLite metadata, shared by a module's tests."""
    with new_stack(tmp_path_factory.mktemp("stack")) as stack:
        stack.wait_for_dag(DAG_ID)
        yield stack
