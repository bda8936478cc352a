"""The gate's label_set check on a real lake in local Spark: a candidate trained on a class its champion never had
fails its gate naming the class, unless the run allows a label change, and then its verdict and the champion's
history say it was allowed; a champion whose registry record holds no labels is compared by its model's own."""

from __future__ import annotations

import pytest

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import CandidateRecord, FeaturesRecord, WindowRecord
from imagepipe.registry import Registry
from pipeline_runs import TRAIN, run_pipeline
from spark_jobs import evaluate_model, promote_model, train_classifier

# Trains and evaluates whole runs: make test only.
pytestmark = pytest.mark.slow
CHAMPION_CLASSES = ("beach", "forest", "night_sky")
ADDED = "snowfield"
# About ten test images per run: the gate's default minimum would judge none of these runs.
EVALUATE = ("--min-test-images", "5")


@pytest.fixture(scope="module")
def lake_root(spark, s3_endpoint, tmp_path_factory) -> str:
    """A lake whose champion, version 1 (run manual__three), knows three classes, and where run manual__four
    trained version 2 after images of a fourth class arrived, and evaluated it."""
    bucket = "label-change"
    s3_client().create_bucket(Bucket=bucket)
    sample_data.upload(s3_client(), bucket, "set", sample_data.generate(per_class=30, seed=3, classes=CHAMPION_CLASSES))
    settle()
    root = str(tmp_path_factory.mktemp("label-change") / "lake")
    run_pipeline(bucket, root, "manual__three", *EVALUATE)
    promote_model.main(["--run-id", "manual__three", "--lake-root", root])
    sample_data.upload(s3_client(), bucket, "set", sample_data.generate(per_class=30, seed=4, classes=(ADDED,)))
    settle()
    run_pipeline(bucket, root, "manual__four", *EVALUATE)
    return root


def retrain(lake_root: str, run_id: str, *evaluate_args: str) -> int:
    """Train and evaluate a new version on manual__four's images, as a re-run of that window would; its number."""
    lake = Lake(lake_root)
    for kind in (WindowRecord, FeaturesRecord):
        lake.write_record(run_id, lake.read_record("manual__four", kind))
    common = ["--run-id", run_id, "--lake-root", lake_root]
    train_classifier.main([*common, *TRAIN])
    evaluate_model.main([*common, *EVALUATE, *evaluate_args])
    return lake.read_record(run_id, CandidateRecord).version


def label_set(verdict: dict) -> dict:
    [check] = [check for check in verdict["checks"] if check["name"] == "label_set"]
    return check


def test_a_candidate_with_a_class_its_champion_lacks_fails_its_gate_naming_the_class(lake_root):
    registry = Registry(Lake(lake_root).registry, "image_classifier")
    assert registry.metadata(1)["labels"] == list(CHAMPION_CLASSES)
    assert registry.metadata(2)["labels"] == [*CHAMPION_CLASSES, ADDED]

    verdict = registry.document(2, "verdict")
    assert verdict["passed"] is False
    # Accuracy alone would let it through: the champion is scored on snowfield images it cannot name.
    assert [check["name"] for check in verdict["checks"] if not check["passed"]] == ["label_set"]
    assert label_set(verdict)["detail"] == (
        f"added: {ADDED}; removed: - (labels must be champion v1's; allow_label_change lets a run change them)")
    with pytest.raises(InputError, match=f"failed its gate, not promoted: .*FAIL label_set: added: {ADDED}; removed"):
        promote_model.main(["--run-id", "manual__four", "--lake-root", lake_root])
    assert registry.champion_version() == 1


def test_with_allow_label_change_the_candidate_passes_and_its_verdict_says_the_change_was_allowed(lake_root):
    version = retrain(lake_root, "manual__allowed", "--allow-label-change", "true")

    registry = Registry(Lake(lake_root).registry, "image_classifier")
    verdict = registry.document(version, "verdict")
    assert verdict["passed"] is True and verdict["thresholds"]["allow_label_change"] is True
    line = (f"PASS label_set: added: {ADDED}; removed: - (labels differ from champion v1's; the change is allowed by "
            "allow_label_change)")
    assert f"- {line}" in registry.read_file(version, "report.md").decode().splitlines()

    promote_model.main(["--run-id", "manual__allowed", "--lake-root", lake_root])
    assert registry.champion_version() == version
    assert registry.champion().reason == (
        f"verdict passed with a label change allowed by allow_label_change (added: {ADDED}; removed: -)")


def test_a_champion_recorded_without_labels_is_compared_by_its_models_labels(lake_root):
    registry = Registry(Lake(lake_root).registry, "image_classifier")
    # Version 1's model under a record as an older registry kept it: metadata without labels.
    old = registry.allocate_version("manual__old_record")
    registry.save_model(old, registry.load_model(1))
    registry.write_document(old, "metadata", {k: v for k, v in registry.metadata(1).items() if k != "labels"})
    registry.promote(old, registry.champion_version(), "manual__old_record", "a champion recorded without labels")

    version = retrain(lake_root, "manual__after_old_record")

    verdict = registry.document(version, "verdict")
    assert label_set(verdict)["passed"] is False
    assert label_set(verdict)["detail"].startswith(f"added: {ADDED}; removed: - (labels must be champion v{old}'s")
    assert registry.document(version, "metrics")["champion"]["labels"] == list(CHAMPION_CLASSES)
