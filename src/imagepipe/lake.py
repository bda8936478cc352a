"""Layout of the lake: every table and document a run reads or writes, under one root URI.

Tables are Apache Iceberg tables of the catalog (imagepipe.tables), in the lake's namespace, stored under the root:

    <root>/images/                         images: curated images (bytes + metadata), partitioned by window_id
    <root>/quarantine/                     quarantine: rejected objects with their reason, by window_id
    <root>/features/<fingerprint>/         features_<fingerprint>: feature vectors of one feature space, by window_id
    <root>/feature_errors/<fingerprint>/   feature_errors_<fingerprint>: images that space's decoder refused
    <root>/predictions/<model>/            predictions_<model>: labels scoring runs gave with the champion, by run_id
    <root>/drift/<model>/                  drift_<model>: each scoring run's drift figures (imagepipe.drift), by run_id
    <root>/forgotten/                      forgotten: each image forgotten, who asked, when and why, by run_id

Documents sit beside them:

    <root>/feature_spaces/<fingerprint>.json   the settings that made a feature space
    <root>/runs/<run>/<kind>.json          what each DAG run decided and produced: its typed records (imagepipe.records)
    <root>/registry/<model>/               model versions, champion pointer, promotion history
    <root>/_state/ingest_watermark.json    end of the newest window ingested

A dataset's lake is <lake>/datasets/<name>: its tables are in the namespace <name> (the default dataset's in
`default`). A lake other than the deployment's (IMAGEPIPE_LAKE_ROOT), e.g. a test's, gets namespaces suffixed with a
digest of its root, so two lakes in one catalog never share a table.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from imagepipe import settings, storage
from imagepipe.errors import InputError, MissingRecordError

if TYPE_CHECKING:
    from imagepipe.records import RunRecord

R = TypeVar("R", bound="RunRecord")

WINDOW_COLUMN = "window_id"
# The lake's Iceberg catalog as Spark SQL names it (imagepipe.tables configures it).
CATALOG = "imagepipe"


def run_key(run_id: str) -> str:
    """A path-safe name for an Airflow run id (which holds ':' and '+'): every other character becomes ~ and its
    hex code, so distinct run ids never share a name."""
    if not run_id:
        raise InputError("run id is empty; pass the Airflow run id, e.g. manual__2026-01-01T00:00:00+00:00")
    return re.sub(r"[^A-Za-z0-9._-]", lambda match: f"~{ord(match.group()):x}", run_id)


class Table(NamedTuple):
    """One Iceberg table of the lake: its name in the catalog and the URI its files live under."""

    namespace: str
    name: str
    location: str

    @property
    def identifier(self) -> str:
        """The name Spark SQL knows it by, e.g. imagepipe.`default`.`images`."""
        return f"{CATALOG}.`{self.namespace}`.`{self.name}`"


def table_name(*parts: str) -> str:
    """A table name from a kind and a fingerprint or model name: letters, digits and underscores only."""
    return re.sub(r"[^a-z0-9_]", "_", "_".join(parts).lower())


def namespace_of(root: str) -> str:
    """The catalog namespace of the lake at root: the dataset's name (`default` at the lake's root), suffixed with a
    digest of the root unless it is the deployment's lake."""
    root = root.rstrip("/")
    dataset = re.fullmatch(r"(.*)/datasets/([a-z][a-z0-9_]*)", root)
    base, name = (dataset.group(1), dataset.group(2)) if dataset else (root, "default")
    if storage.spark_path(base) == storage.spark_path(settings.lake_root().rstrip("/")):
        return name
    return f"{name}_{hashlib.sha256(storage.spark_path(base).encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Lake:
    root: str

    @property
    def namespace(self) -> str:
        return namespace_of(self.root)

    def _table(self, name: str, *folders: str) -> Table:
        return Table(self.namespace, name, storage.spark_path(storage.join(self.root, *folders)))

    @property
    def images(self) -> Table:
        return self._table("images", "images")

    @property
    def quarantine(self) -> Table:
        return self._table("quarantine", "quarantine")

    def features(self, fingerprint: str) -> Table:
        return self._table(table_name("features", fingerprint), "features", fingerprint)

    def feature_errors(self, fingerprint: str) -> Table:
        return self._table(table_name("feature_errors", fingerprint), "feature_errors", fingerprint)

    @property
    def forgotten(self) -> Table:
        return self._table("forgotten", "forgotten")

    def predictions(self, model_name: str) -> Table:
        return self._table(table_name("predictions", model_name), "predictions", model_name)

    def drift(self, model_name: str) -> Table:
        return self._table(table_name("drift", model_name), "drift", model_name)

    def feature_space_document(self, fingerprint: str) -> str:
        return storage.join(self.root, "feature_spaces", f"{fingerprint}.json")

    def run_document(self, run_id: str, name: str) -> str:
        return storage.join(self.root, "runs", run_key(run_id), f"{name}.json")

    @property
    def registry(self) -> str:
        return storage.join(self.root, "registry")

    @property
    def watermark(self) -> str:
        return storage.join(self.root, "_state", "ingest_watermark.json")

    def find_record(self, run_id: str, kind: type[R]) -> R | None:
        """The run's record of that kind (imagepipe.records), or None when the step that writes it has not run."""
        where = self.run_document(run_id, kind.KIND)
        document = storage.read_json(where)
        return None if document is None else kind.from_json(document, where)

    def read_record(self, run_id: str, kind: type[R]) -> R:
        """The record an earlier task of the same run wrote; its absence means that task has not run."""
        record = self.find_record(run_id, kind)
        if record is None:
            raise MissingRecordError(
                f"run {run_id} has no {kind.KIND} record in {self.root}; run the step that writes it first")
        return record

    def write_record(self, run_id: str, record) -> None:
        storage.write_json(self.run_document(run_id, record.KIND), record.to_json())


def registry_uri(lake_root_uri: str | None = None) -> str:
    """Root URI of the model registry (s3://bucket/prefix or a path): IMAGEPIPE_REGISTRY_URI, else the registry folder
    of the lake (the given lake root, or the environment's)."""
    return os.environ.get("IMAGEPIPE_REGISTRY_URI") or Lake(lake_root_uri or settings.lake_root()).registry
