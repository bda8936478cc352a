"""Fixtures of the scheduler tests: Airflow started for real on the embedded S3 endpoint of the test session, its
metadata in SQLite (the laptop's default) or in a real PostgreSQL server (production's). Each test module shares one
stack between its scenarios, and the two modules run side by side under make test."""

from __future__ import annotations

import os
import uuid

import pytest

from .airflow_stack import DAG_ID, AirflowStack
from .postgres_server import PostgresServer


def s3_env() -> dict[str, str]:
    return {name: os.environ[name] for name in
            ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}


def new_stack(root, sql_alchemy_conn: str | None = None) -> AirflowStack:
    """A stack whose default source is a new, empty bucket: the scheduled run that unpausing
    creates for the latest interval then finds nothing, instead of failing on a missing bucket and holding the DAG's
    one active run through its retries."""
    from imagepipe.object_store import s3_client

    bucket = f"source-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=bucket)
    return AirflowStack(root, s3_env(), sql_alchemy_conn, extra_env={"IMAGEPIPE_SOURCE_URI": f"s3://{bucket}/images/"})


@pytest.fixture(scope="module")
def postgres_stack(tmp_path_factory, s3_endpoint):
    """A production-shaped stack, its metadata in a PostgreSQL server of its own, shared by a module's tests."""
    database = "airflow"
    with PostgresServer() as server:
        server.create_database(database)
        with new_stack(tmp_path_factory.mktemp("stack"), server.sqlalchemy_url(database)) as stack:
            stack.wait_for_dag(DAG_ID)
            yield stack


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory, s3_endpoint):
    """One stack with the DAG's defaults and the laptop's SQLite metadata, shared by a module's tests."""
    with new_stack(tmp_path_factory.mktemp("stack")) as stack:
        stack.wait_for_dag(DAG_ID)
        yield stack
