"""What one task of a run hands the next: frozen, typed run records, each kept as runs/<run>/<kind>.json in the
dataset's lake folder (imagepipe.lake) with its format number.

    window      the run's ingest window, decided once (ingest_images)            read by every later step
    ingest      what ingest listed, took, rejected and committed                 the skip hooks, training, the summary
    finetune    the fine-tuned weights and their lineage (finetune_backbone)     extract_features, the summary
    features    the feature space and the rows extract_features wrote            train_classifier, the summary
    retrain     whether training was due (retrain_min_new_share), and why         the summary, the run tab
    candidate   the model version the run trained (train_classifier)             evaluate, the gate, promote, the UI
    gate        the gate's decision on it: passed, or forced past it and why      promote
    promotion   what promote did with it                                         publish_champion, the summary
    scoring     what batch scoring labelled, and its drift verdict               drift_alarm
    forget      what forgetting an image removed                                 its user

Every reader and writer goes through these classes (Lake.read_record, find_record, write_record). A record written
before records had a format (format 0, today's main up to this change) reads as the fields it had, with the
DEFAULTS of the fields added since: that is the one place an older record is upgraded. A malformed record (not an
object, a missing or mistyped field, a newer format) is refused in one line naming its file. Standard library only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from imagepipe.errors import InputError
from imagepipe.windows import Window

FORMAT_KEY = "format"
# A field's annotation as the JSON types its value may take (a float field takes an integer too).
_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,), "list": (list,)}


@dataclass(frozen=True)
class RunRecord:
    KIND: ClassVar[str] = ""
    FORMAT: ClassVar[int] = 1
    DEFAULTS: ClassVar[dict] = {}  # fields added after format 0, with the value an older record meant
    JSON_KEYS: ClassVar[dict] = {}  # field -> its key in the JSON, where that key is no Python name (`from`)
    REMEDY: ClassVar[str] = "re-run the step that writes it"  # what a malformed record's refusal tells to do

    def to_json(self) -> dict:
        return {FORMAT_KEY: self.FORMAT, **{self.JSON_KEYS.get(field.name, field.name): getattr(self, field.name)
                                           for field in dataclasses.fields(self)}}

    @classmethod
    def from_json(cls, document, where: str):
        """The record from its JSON, upgraded from an older format; InputError naming `where` when malformed."""
        if not isinstance(document, dict):
            raise InputError(f"{where}: a {cls.KIND} record is a JSON object, not {type(document).__name__}; "
                             f"{cls.REMEDY}")
        found = document.get(FORMAT_KEY, 0)
        if not isinstance(found, int) or found > cls.FORMAT:
            raise InputError(f"{where}: {cls.KIND} record of format {found!r}, newer than this imagepipe's "
                             f"{cls.FORMAT}; read it with the imagepipe that wrote it")
        document = {**cls.DEFAULTS, **document} if found < cls.FORMAT else document
        values = {}
        for field in dataclasses.fields(cls):
            key = cls.JSON_KEYS.get(field.name, field.name)
            if key not in document:
                raise InputError(f"{where}: {cls.KIND} record lacks {key}; {cls.REMEDY}")
            value = document[key]
            if not _typed(value, field.type):
                raise InputError(f"{where}: {cls.KIND} record's {key} is {value!r}, not {field.type}; "
                                 f"{cls.REMEDY}")
            values[field.name] = value
        return cls(**values)


def _typed(value, annotation: str) -> bool:
    kinds = [kind.strip() for kind in annotation.split("|")]
    if value is None:
        return "None" in kinds
    if isinstance(value, bool) and "bool" not in kinds:  # JSON's true is no number
        return False
    return any(isinstance(value, _TYPES[kind]) for kind in kinds if kind in _TYPES)


@dataclass(frozen=True)
class WindowRecord(RunRecord):
    KIND: ClassVar[str] = "window"
    start: str
    end: str
    id: str
    run_id: str | None
    request: dict | None  # the start and end the run asked for: a retry asking the same reuses this window
    DEFAULTS: ClassVar[dict] = {"run_id": None, "request": None}

    @classmethod
    def of(cls, window: Window, run_id: str, request: dict) -> WindowRecord:
        return cls(**window.to_json(), run_id=run_id, request=request)

    @property
    def window(self) -> Window:
        return Window.from_json({"start": self.start, "end": self.end})


@dataclass(frozen=True)
class IngestRecord(RunRecord):
    KIND: ClassVar[str] = "ingest"
    source_uri: str
    window: dict
    listed: int
    outside_window: int
    unlabeled: int
    fetched: int
    bytes: int
    ingested: int
    duplicates: int
    conflicts: int
    rejected: dict  # reason kind -> objects
    labels: dict  # label -> images taken
    images_snapshot: int | None
    quarantined: list  # {key, reason} of each quarantined object
    seconds: float
    objects_per_s: float
    DEFAULTS: ClassVar[dict] = {"conflicts": 0, "quarantined": [], "images_snapshot": None, "unlabeled": 0,
                                "outside_window": 0, "bytes": 0, "seconds": 0.0, "objects_per_s": 0.0}


@dataclass(frozen=True)
class FinetuneRecord(RunRecord):
    KIND: ClassVar[str] = "finetune"
    backbone: str | None  # None in records written before it was recorded
    weights: str
    sha256: str
    reused: bool
    inputs_key: str
    best_validation_accuracy: float
    epochs_run: int
    DEFAULTS: ClassVar[dict] = {"backbone": None}


@dataclass(frozen=True)
class FeaturesRecord(RunRecord):
    KIND: ClassVar[str] = "features"
    fingerprint: str
    preprocessing: list | None
    backbone: dict | None
    windows: list  # the window ids whose features this run computed
    rows: int
    reused: int
    undecodable: int
    DEFAULTS: ClassVar[dict] = {"preprocessing": None, "backbone": None, "windows": [], "reused": 0, "undecodable": 0}


@dataclass(frozen=True)
class RetrainRecord(RunRecord):
    """The train task's check of retrain_min_new_share (imagepipe.retraining): written when the run asked for it,
    whether training then ran (due) or was skipped, keeping the champion."""

    KIND: ClassVar[str] = "retrain"
    due: bool
    reason: str


@dataclass(frozen=True)
class CandidateRecord(RunRecord):
    KIND: ClassVar[str] = "candidate"
    version: int
    model_name: str | None
    DEFAULTS: ClassVar[dict] = {"model_name": None}


@dataclass(frozen=True)
class GateRecord(RunRecord):
    """The gate task's decision (imagepipe.airflow.run_steps.verdict_passed), which promote carries out: a
    candidate that failed its verdict is promoted only when forced_reason says why."""

    KIND: ClassVar[str] = "gate"
    version: int
    passed: bool
    forced_reason: str | None


@dataclass(frozen=True)
class PromotionRecord(RunRecord):
    KIND: ClassVar[str] = "promotion"
    version: int
    changed: bool
    previous: int | None = None
    skipped: str | None = None  # why promote kept the champion without trying (a backfill)
    DEFAULTS: ClassVar[dict] = {"previous": None, "skipped": None}


@dataclass(frozen=True)
class ScoringRecord(RunRecord):
    KIND: ClassVar[str] = "scoring"
    source_uri: str
    window: dict
    model_name: str
    model_version: int
    fingerprint: str
    listed: int
    outside_window: int
    scored: int
    not_scored: dict
    labels: dict
    predictions: str
    seconds: float
    objects_per_s: float
    drift: dict | None  # imagepipe.drift.DriftReport's JSON; None in records written before drift was judged
    DEFAULTS: ClassVar[dict] = {"drift": None}


@dataclass(frozen=True)
class ForgetRecord(RunRecord):
    KIND: ClassVar[str] = "forget"
    key: str | None
    sha256: list
    reason: str
    requested_by: str | None
    forgotten_at: str
    rows_removed: dict  # table -> rows
    model_versions: list  # the versions whose training read the image
    run_id: str


KINDS = {kind.KIND: kind for kind in (WindowRecord, IngestRecord, FinetuneRecord, FeaturesRecord, RetrainRecord,
                                      CandidateRecord, GateRecord, PromotionRecord, ScoringRecord, ForgetRecord)}
