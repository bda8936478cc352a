"""The run records: each kind round-trips through its JSON, records written by the code before records had a format
(real files, records_from_main/, the registry's in its registry/ folder) still read, a malformed record is refused in
one line naming its file, and no product code reads or writes a run record's JSON except through its class."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from imagepipe import records, storage
from imagepipe.errors import InputError
from imagepipe.gate import Verdict
from imagepipe.lake import Lake
from imagepipe.records import (
    CandidateRecord,
    FeaturesRecord,
    FinetuneRecord,
    GateRecord,
    IngestRecord,
    PromotionRecord,
    RetrainRecord,
    ScoringRecord,
)
from imagepipe.registry import ChampionEntry
from imagepipe.registry.versions import RunVersion
from imagepipe.windows import Window, parse_timestamp

FROM_MAIN = Path(__file__).parent / "records_from_main"
ROOT = Path(__file__).resolve().parents[2]
RUN = "manual__2026-12-07T10:00:00+00:00"
# Kinds written before records had a format, as files the code then wrote; the gate and retrain records are newer.
OLDER_KINDS = sorted(path.stem for path in FROM_MAIN.glob("*.json"))


def test_each_kind_of_record_written_before_records_had_a_format_still_reads():
    assert set(records.KINDS) - set(OLDER_KINDS) == {"gate", "retrain"}
    read = {kind: records.KINDS[kind].from_json(json.loads((FROM_MAIN / f"{kind}.json").read_text()), kind)
            for kind in OLDER_KINDS}

    assert read["window"].window == Window(parse_timestamp("1970-01-01T00:00:00+00:00"),
                                           parse_timestamp("2026-12-07T13:57:03.806547+00:00"))
    assert read["window"].request == {"end": "2026-12-07T13:57:03.806547+00:00", "start": "watermark"}
    assert (read["ingest"].ingested, read["ingest"].labels["beach"], read["ingest"].quarantined) == (400, 100, [])
    # A field added after the record was written takes the value its absence meant.
    assert (read["features"].fingerprint, read["features"].backbone) == ("resnet18-69c5ebefe7a66ad8", None)
    assert read["candidate"] == CandidateRecord(1, "image_classifier")
    assert read["promotion"] == PromotionRecord(1, True, previous=None, skipped=None)
    assert (read["scoring"].scored, read["scoring"].drift) == (9, None)
    assert (read["finetune"].backbone, read["finetune"].epochs_run) == ("timm:tf_efficientnet_lite0", 6)
    assert read["forget"].model_versions == [{"splits": ["train"], "version": 1}]


def test_every_kind_round_trips_through_its_file_with_its_format(tmp_path):
    lake = Lake(str(tmp_path))
    written = [records.KINDS[kind].from_json(json.loads((FROM_MAIN / f"{kind}.json").read_text()), kind)
               for kind in OLDER_KINDS] + [GateRecord(3, passed=False, forced_reason="labels fixed upstream"),
                                           RetrainRecord(False, "8 new images, below retrain_min_new_share=0.5")]
    for record in written:
        lake.write_record(RUN, record)

        assert storage.read_json(lake.run_document(RUN, record.KIND))["format"] == record.FORMAT
        assert lake.read_record(RUN, type(record)) == record


@pytest.mark.parametrize(("document", "says"), [
    ([1, 2], "a candidate record is a JSON object, not list"),
    ({"model_name": "pets"}, "candidate record lacks version"),
    ({"version": "3", "model_name": "pets"}, "candidate record's version is '3', not int"),
    ({"version": True, "model_name": "pets"}, "candidate record's version is True, not int"),
    ({"format": 2, "version": 3, "model_name": "pets"}, "candidate record of format 2, newer than this imagepipe's 1"),
])
def test_a_malformed_record_is_refused_in_one_line_naming_its_file(tmp_path, document, says):
    lake = Lake(str(tmp_path))
    storage.write_json(lake.run_document(RUN, "candidate"), document)

    with pytest.raises(InputError) as refused:
        lake.read_record(RUN, CandidateRecord)

    message = str(refused.value)
    assert message.startswith(f"{lake.run_document(RUN, 'candidate')}: {says}") and "\n" not in message


def test_a_record_of_the_current_format_gets_no_defaults():
    document = {"format": 1, "fingerprint": "f", "preprocessing": None, "windows": [], "rows": 1, "reused": 0,
                "undecodable": 0}  # no backbone: a current record must carry every field

    with pytest.raises(InputError, match="^features: features record lacks backbone"):
        FeaturesRecord.from_json(document, "features")


def test_typed_fields_take_what_their_json_may_hold():
    finetune = FinetuneRecord("resnet18", "/w.pt", "0" * 64, False, "k", 1, 2)  # an accuracy of exactly 1
    assert FinetuneRecord.from_json(finetune.to_json(), "finetune") == finetune
    scoring = json.loads((FROM_MAIN / "scoring.json").read_text()) | {"drift": {"format": 1, "alarm": False}}
    assert ScoringRecord.from_json(scoring, "scoring").drift == {"format": 1, "alarm": False}
    assert IngestRecord.from_json(json.loads((FROM_MAIN / "ingest.json").read_text()), "ingest").images_snapshot > 0


def test_the_registrys_records_written_before_they_had_a_format_still_read():
    def read(kind, name: str):
        return kind.from_json(json.loads((FROM_MAIN / "registry" / name).read_text()), name)

    entry = read(ChampionEntry, "champion_entry.json")
    verdict = read(Verdict, "verdict.json")

    assert (entry.sequence, entry.version, entry.from_version, entry.kind, entry.user) == (2, 2, 1, "promotion", None)
    assert entry.made_champion is None  # kept since: read from the whole history until the next promotion
    assert (verdict.passed, verdict.candidate_version, verdict.champion_version) == (True, 2, 1)
    assert [check.name for check in verdict.checks] == ["min_test_images", "min_accuracy", "label_set", "max_drop"]
    assert (verdict.checks[2].change, verdict.checks[3].change) == ("added: -; removed: -", None)
    assert read(RunVersion, "run_version.json") == RunVersion(2, "manual__2026-11-21T08:00:00+00:00")


# Calls that read or write JSON by hand; a run record passes through them only inside its class's from_json.
JSON_CALLS = {"read_json", "write_json", "loads", "load", "dumps", "dump"}


# What names a run record's file in a statement: the lake's run documents, the registry's runs/<run>.json, verdicts
# and champion history entries.
RECORD_NAMES = ("run_document", "window.json", '"runs"', "runs/", '"verdict"', "verdict.json", "VERDICT", "CHAMPION",
                "champion.json", "history/")


def stray_record_reads(path: Path, root: Path = ROOT) -> list[str]:
    """Lines of a file that read or write a run record's JSON by hand: a JSON call whose statement names a run
    record's file without going through a record class's from_json or to_json."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt) or isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.If, ast.For,
                                                                ast.With, ast.Try, ast.While)):
            continue
        text = ast.get_source_segment(source, node) or ""
        calls = {getattr(call.func, "attr", getattr(call.func, "id", None)) for call in ast.walk(node)
                 if isinstance(call, ast.Call)}
        names_record = any(name in text for name in RECORD_NAMES)
        if calls & JSON_CALLS and names_record and not ("from_json" in text or "to_json" in text):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {text.splitlines()[0]}")
    return found


def test_no_product_code_reads_or_writes_a_run_records_json_by_hand():
    files = [path for folder in ("src", "spark_jobs", "dags") for path in sorted((ROOT / folder).rglob("*.py"))]
    stray = [line for path in files if path.name != "lake.py" for line in stray_record_reads(path)]

    assert stray == []


def test_the_stray_read_finder_names_a_hand_read_record(tmp_path):
    module = tmp_path / "job.py"
    module.write_text("def main(lake, run_id, registry):\n"
                      "    window = storage.read_json(lake.run_document(run_id, 'window'))\n"
                      "    typed = WindowRecord.from_json(\n"
                      "        storage.read_json(lake.run_document(run_id, 'window')), 'w')\n"
                      "    passed = json.loads(registry.read_file(1, 'verdict.json'))['passed']\n"
                      "    champion = registry._store.read_json(CHAMPION)\n")
    assert stray_record_reads(module, tmp_path) == [
        "job.py:2: window = storage.read_json(lake.run_document(run_id, 'window'))",
        "job.py:5: passed = json.loads(registry.read_file(1, 'verdict.json'))['passed']",
        "job.py:6: champion = registry._store.read_json(CHAMPION)"]
