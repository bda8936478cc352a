"""python -m imagepipe.summary prints the run's outcome, the same the Airflow UI's run tab shows, with counts that
say what they count."""

from __future__ import annotations

import pytest
from ui.model_records import QUARANTINED, build

from imagepipe import summary
from imagepipe.records import FinetuneRecord


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return build(str(tmp_path_factory.mktemp("summary") / "lake"))


def printed(capsys, records, run: int) -> list[str]:
    summary.main(["--run-id", records.run(run), "--lake-root", records.lake.root])
    return capsys.readouterr().out.splitlines()


def test_the_candidate_line_counts_the_rows_of_each_split_not_every_feature_row(capsys, records):
    rows = records.registry.metadata(2)["rows"]

    lines = printed(capsys, records, 2)

    train, validation, test = (sum(rows[split].values()) for split in ("train", "validation", "test"))
    assert f"candidate:        image_classifier version 2, trained on {train} rows (validation {validation}, " \
           f"test {test})" in lines
    assert train < train + validation + test  # what the old line called "trained on"


def test_the_summary_names_the_quarantined_keys_the_promotion_and_the_champion(capsys, records):
    lines = printed(capsys, records, 2)

    assert "label conflicts:  2" in lines
    assert "images rejected:  2 (too small=1, undecodable=1)" in lines
    assert f"quarantined:      4 objects (rejected or label conflicts) in {records.lake.quarantine.identifier}" in lines
    assert [line.strip() for line in lines if line.strip().startswith("images/")] == sorted(
        f"{key}: {reason}" for key, reason in QUARANTINED)
    assert "gate verdict:     FAILED" in lines
    assert "promotion:        version 2 not promoted: its gate failed" in lines
    assert lines[-1] == "champion:         version 1"
    assert "promotion:        version 3 became champion (was version 1)" in printed(capsys, records, 3)


def test_a_run_that_fine_tuned_its_backbone_names_the_weights_its_features_came_from(capsys, records):
    assert not [line for line in printed(capsys, records, 3) if line.startswith("fine-tuned:")]
    weights = f"{records.lake.root}/finetuned/resnet18-0123abcd/backbone.pt"
    records.lake.write_record(records.run(3), FinetuneRecord(
        backbone="resnet18", weights=weights, sha256="0" * 64, reused=False, inputs_key="resnet18-0123abcd",
        best_validation_accuracy=0.9125, epochs_run=4))

    assert f"fine-tuned:       {weights} (validation accuracy 0.9125 after 4 epochs)" in printed(capsys, records, 3)


def test_a_run_without_records_is_refused_in_one_line(records):
    with pytest.raises(SystemExit) as refused:
        summary.main(["--run-id", "manual__never", "--lake-root", records.lake.root])

    assert str(refused.value) == (f"summary: error: run manual__never has no window record in {records.lake.root}; "
                                  "run the step that writes it first")
