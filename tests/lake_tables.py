"""Reads a stack's lake tables as the stack's own processes see them: its environment names the catalog, the object
store and the deployment's lake (which sets the tables' namespace)."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock


def table_rows(env: dict[str, str], lake_root: Path | str, table: str, columns: tuple[str, ...]) -> list[dict]:
    """The current rows of one of the lake's tables (`images`, `quarantine`, ...), read without Spark."""
    from imagepipe import tables
    from imagepipe.lake import Lake

    with mock.patch.dict(os.environ, env, clear=True):
        return tables.read_arrow(getattr(Lake(str(lake_root)), table), columns).to_pylist()


def current_snapshot_id(env: dict[str, str], lake_root: Path | str, table: str) -> int | None:
    """The id of the table's current snapshot, read without Spark."""
    from imagepipe import tables
    from imagepipe.lake import Lake

    with mock.patch.dict(os.environ, env, clear=True):
        snapshot = tables.python_table(getattr(Lake(str(lake_root)), table)).current_snapshot()
    return None if snapshot is None else snapshot.snapshot_id
