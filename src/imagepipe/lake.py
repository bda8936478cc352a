"""Layout of the lake: every table and document a run reads or writes, under one root URI.

    <root>/images/window_id=<window>/          curated images (Parquet: bytes + metadata)
    <root>/quarantine/window_id=<window>/      rejected objects with their reason
    <root>/features/<fingerprint>/window_id=<window>/   feature vectors of one feature space
    <root>/feature_errors/<fingerprint>/window_id=<window>/   images that space's decoder refused, with the reason
    <root>/runs/<run>/                         what each DAG run decided and produced (window, reports, candidate)
    <root>/registry/<model>/                   model versions, champion pointer, promotion history
    <root>/predictions/<model>/run_id=<run>/   labels a scoring run gave unlabelled images with that model's champion
    <root>/_state/ingest_watermark.json        end of the newest window ingested
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagepipe import storage
from imagepipe.errors import InputError, MissingRecordError

WINDOW_COLUMN = "window_id"


def run_key(run_id: str) -> str:
    """A path-safe name for an Airflow run id (which holds ':' and '+'): every other character becomes ~ and its
    hex code, so distinct run ids never share a name."""
    if not run_id:
        raise InputError("run id is empty; pass the Airflow run id, e.g. manual__2026-01-01T00:00:00+00:00")
    return re.sub(r"[^A-Za-z0-9._-]", lambda match: f"~{ord(match.group()):x}", run_id)


@dataclass(frozen=True)
class Lake:
    root: str

    @property
    def images(self) -> str:
        return storage.join(self.root, "images")

    @property
    def quarantine(self) -> str:
        return storage.join(self.root, "quarantine")

    def features(self, fingerprint: str) -> str:
        return storage.join(self.root, "features", fingerprint)

    def feature_errors(self, fingerprint: str) -> str:
        return storage.join(self.root, "feature_errors", fingerprint)

    def run_document(self, run_id: str, name: str) -> str:
        return storage.join(self.root, "runs", run_key(run_id), f"{name}.json")

    def predictions(self, model_name: str) -> str:
        return storage.join(self.root, "predictions", model_name)

    @property
    def registry(self) -> str:
        return storage.join(self.root, "registry")

    @property
    def watermark(self) -> str:
        return storage.join(self.root, "_state", "ingest_watermark.json")

    def read_run(self, run_id: str, name: str) -> dict:
        """A document an earlier task of the same run wrote; its absence means that task has not run."""
        document = storage.read_json(self.run_document(run_id, name))
        if document is None:
            raise MissingRecordError(
                f"run {run_id} has no {name} record in {self.root}; run the step that writes it first")
        return document

    def write_run(self, run_id: str, name: str, document: dict) -> None:
        storage.write_json(self.run_document(run_id, name), document)
