"""Whether a run's new images call for a new model, from the champion's metadata and the feature table's rows per
window."""

from __future__ import annotations

from imagepipe.retraining import check

FINGERPRINT = "timm-tf_efficientnet_lite0-6d4ce93f71ce20ba"
MODEL = {"classifier": "logistic_regression"}
CHAMPION = {"fingerprint": FINGERPRINT, "model": MODEL, "training_days": None,
            "data_window_end": "2026-12-07T10:00:00+00:00",
            "rows": {"train": {"a": 400, "b": 400}, "validation": {"a": 50, "b": 50}, "test": {"a": 50, "b": 50}}}
TRAINED = "19700101T000000.000000Z_20261207T100000.000000Z"  # the window the champion was trained on
NEW = "20261207T100000.000000Z_20261207T110000.000000Z"
LATER = "20261207T110000.000000Z_20261207T120000.000000Z"  # after the run's window
RUN_END = "20261207T110000.000000Z"


def judged(counts: dict[str, int], share: float, champion: int | None = 3, metadata: dict | None = CHAMPION,
           fingerprint: str = FINGERPRINT, model: dict = MODEL, training_days: int | None = None):
    return check(champion, metadata, fingerprint, model, training_days, counts, RUN_END, share)


def test_new_images_below_the_share_keep_the_champion_and_say_how_many_were_new():
    verdict = judged({TRAINED: 1000, NEW: 40, LATER: 500}, 0.05)
    assert not verdict.due
    assert verdict.reason == ("40 new images since champion version 3's training, 4.0% of the 1000 it was trained "
                              "on, below retrain_min_new_share=0.05: training, evaluation and promotion are skipped "
                              "and version 3 stays champion; trigger with retrain_min_new_share=0 to train anyway")


def test_new_images_that_reach_the_share_train():
    verdict = judged({TRAINED: 1000, NEW: 50}, 0.05)
    assert verdict.due and verdict.reason.startswith("50 new images since champion version 3's training, 5.0%")


def test_a_champion_that_does_not_apply_is_no_reason_to_skip():
    assert judged({NEW: 1}, 0.5, champion=None, metadata=None).reason == "there is no champion yet"
    assert judged({NEW: 1}, 0.5, fingerprint="torchvision-resnet18-x").due
    assert judged({NEW: 1}, 0.5, model={"classifier": "linear_svc"}).due
    assert judged({NEW: 1}, 0.5, training_days=30).due
    assert judged({NEW: 1}, 0.0).reason == "retrain_min_new_share is 0: every run trains"
