"""Fixtures of the scheduler tests: Airflow started for real on the embedded S3 endpoint of the test session, its
metadata in a real PostgreSQL server (production's); the UI modules start theirs on SQLite (the laptop's default).
Each test module shares one stack between its scenarios, and the modules run side by side under make test."""

from __future__ import annotations

import uuid

import pytest

from .airflow_stack import DAG_ID, SECOND, SECOND_BUCKET, SECOND_DATASET, AirflowStack, s3_env
from .postgres_server import PostgresServer


def new_stack(root, sql_alchemy_conn: str, datasets: str) -> AirflowStack:
    """A stack whose default dataset runs only when triggered until a test gives it a schedule: unpausing then
    starts no scheduled run that the triggered ones would queue behind (a DAG runs one run at a time). Its default
    source is a new, empty bucket, so the scheduled runs a later schedule starts find nothing instead of failing on a
    missing bucket and holding the DAG's one active run through their retries. Its default dataset's batch scoring
    labels that bucket's unlabelled/ prefix; `datasets` is its datasets file."""
    from imagepipe.object_store import s3_client

    bucket = f"source-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=bucket)
    (root / "datasets.toml").write_text(datasets)
    return AirflowStack(root, s3_env(), sql_alchemy_conn, extra_env={
        "IMAGEPIPE_SOURCE_URI": f"s3://{bucket}/images/", "IMAGEPIPE_SCORING_URI": f"s3://{bucket}/unlabelled/",
        "IMAGEPIPE_SCHEDULE": "none",
        "IMAGEPIPE_DATASETS_FILE": str(root / "datasets.toml")})


@pytest.fixture(scope="module")
def postgres_stack(tmp_path_factory, s3_endpoint):
    """A production-shaped stack, its metadata in a PostgreSQL server of its own, shared by a module's tests; besides
    the default dataset it has a second one, SECOND, run by hand, its source and scoring prefixes in SECOND_BUCKET."""
    from imagepipe.object_store import s3_client

    s3_client().create_bucket(Bucket=SECOND_BUCKET)
    database = "airflow"
    with PostgresServer() as server:
        server.create_database(database)
        with new_stack(tmp_path_factory.mktemp("stack"), server.sqlalchemy_url(database), SECOND_DATASET) as stack:
            stack.wait_for_dag(DAG_ID)
            stack.wait_for_dag(f"{DAG_ID}__{SECOND}")
            yield stack
