"""What the registry tests share: a registry's folder read and written behind its back (as another program would),
and registries holding versions, champions and a small Spark model. tests/s3/test_registry_on_object_storage.py
swaps the `backend` fixture for one on the S3 endpoint and runs the same suites there."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagepipe.gate import Check, Verdict
from imagepipe.registry import Registry

MODEL = "image_classifier"
__all__ = ["backend", "root", "tiny_model"]  # the fixtures, for a test module's star import


class LocalBackend:
    """Reads and writes a registry's files behind its back, as another program with access to the folder would."""

    def __init__(self, root: Path):
        self.root = str(root)

    def write(self, key: str, data: bytes) -> None:
        (Path(self.root) / MODEL / key).write_bytes(data)

    def read(self, key: str) -> bytes:
        return (Path(self.root) / MODEL / key).read_bytes()

    def delete(self, key: str) -> None:
        (Path(self.root) / MODEL / key).unlink()

    def keys(self, prefix: str) -> list[str]:
        base = Path(self.root) / MODEL
        return sorted(str(path.relative_to(base)) for path in (base / prefix).rglob("*") if path.is_file())


@pytest.fixture
def backend(tmp_path):
    return LocalBackend(tmp_path / "registry")


@pytest.fixture
def root(backend) -> str:
    return backend.root


def registry_with_versions(root: str, count: int) -> Registry:
    """A registry holding `count` complete versions (numbered 1..count), each with a passing verdict."""
    registry = Registry(root, MODEL)
    for index in range(count):
        version = registry.allocate_version(f"run-{index}")
        registry.write_document(version, "metadata", {"version": version})
        registry.write_document(version, "verdict", passing_verdict(version - 1 if version > 1 else None))
    return registry


def _verdict(accuracy: float, champion_version: int | None) -> dict:
    """A verdict's JSON, as evaluate_model writes it."""
    passed = accuracy >= 0.8
    detail = f"accuracy {accuracy:.4f} {'>=' if passed else '<'} 0.8000"
    return Verdict(passed=passed, checks=[Check("min_accuracy", "accuracy", 0.8, accuracy, passed, detail)], notes=[],
                   thresholds={"min_accuracy": 0.8}, candidate_version=None, champion_version=champion_version,
                   run_id=None).to_json()


def passing_verdict(champion_version: int | None) -> dict:
    return _verdict(0.9, champion_version)


def failing_verdict(champion_version: int | None) -> dict:
    return _verdict(0.4, champion_version)


def moves(registry: Registry) -> list[tuple]:
    return [(entry.from_version, entry.version, entry.kind) for entry in registry.history()]



def promoted_three_times(root: str) -> Registry:
    registry = registry_with_versions(root, 3)
    registry.promote(1, None, "run-0", "first model")
    registry.promote(2, 1, "run-1", "better")
    registry.promote(3, 2, "run-2", "better still")
    return registry


@pytest.fixture(scope="module")
def tiny_model(spark):
    """A fitted PipelineModel (a StringIndexer on three rows) and the frame it was fitted on."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer

    frame = spark.createDataFrame([("beach",), ("forest",), ("forest",)], ["label"])
    return Pipeline(stages=[StringIndexer(inputCol="label", outputCol="index")]).fit(frame), frame


def saved_version(root: str, tiny_model, run_id: str = "run-a") -> Registry:
    registry = Registry(root, MODEL)
    version = registry.allocate_version(run_id)
    registry.save_model(version, tiny_model[0])
    registry.write_document(version, "metadata", {"version": version})
    return registry

