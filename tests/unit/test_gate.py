import dataclasses
import json
import math
import re

import pytest

from imagepipe.errors import InputError
from imagepipe.gate import NO_CHAMPION_NOTE, Thresholds, Verdict, decide, explain, promotion_reason

LABELS = ["beach", "forest", "night_sky"]


def metrics(accuracy=0.9, macro_f1=0.9, weighted_f1=0.9, rows=50, per_class=None, version=None,
            labels=LABELS) -> dict:
    result = {"accuracy": accuracy, "macro_f1": macro_f1, "weighted_f1": weighted_f1, "rows": rows,
              "per_class": per_class or {}, "labels": labels}
    return result if version is None else {**result, "version": version}


def outcomes(verdict) -> list[tuple[str, bool]]:
    return [(check.name, check.passed) for check in verdict.checks]


def test_first_model_is_judged_on_value_thresholds_alone_and_the_verdict_says_so():
    verdict = decide(metrics(accuracy=0.8), None, Thresholds(min_accuracy=0.7, max_drop=0.05, min_gain=0.1))

    assert verdict.passed is True
    assert outcomes(verdict) == [("min_test_images", True), ("min_accuracy", True)]
    assert verdict.notes == [NO_CHAMPION_NOTE]
    assert dataclasses.asdict(verdict.checks[1]) == {
        "name": "min_accuracy", "metric": "accuracy", "threshold": 0.7, "observed": 0.8, "passed": True,
        "detail": "accuracy 0.8000 >= 0.7000 (minimum)", "change": None,
    }


def test_every_verdict_records_the_thresholds_it_applied():
    thresholds = Thresholds(min_accuracy=0.6, min_macro_f1=0.5)

    assert decide(metrics(), None, thresholds).thresholds == thresholds.to_json()


@pytest.mark.parametrize(
    ("accuracy", "passed"),
    [(0.75, True), (0.7499, False), (0.75 - 1e-12, True), (0.76, True)],
    ids=["exactly-at", "just-below", "rounding-noise", "above"],
)
def test_min_accuracy_boundary(accuracy, passed):
    verdict = decide(metrics(accuracy=accuracy), None, Thresholds(min_accuracy=0.75))

    assert verdict.passed is passed


def test_min_macro_f1_is_checked_when_set():
    verdict = decide(metrics(macro_f1=0.55), None, Thresholds(min_macro_f1=0.6))

    assert verdict.passed is False
    assert ("min_macro_f1", False) in outcomes(verdict)


def test_too_few_test_images_fail_even_a_perfect_model():
    verdict = decide(metrics(accuracy=1.0, rows=9), None, Thresholds(min_test_images=10))

    assert verdict.passed is False
    assert outcomes(verdict)[0] == ("min_test_images", False)


def test_each_class_recall_is_a_check_of_its_own_and_classes_without_test_images_are_skipped():
    per_class = {"beach": {"recall": 0.9, "support": 10}, "forest": {"recall": 0.4, "support": 10},
                 "snowfield": {"recall": 0.0, "support": 0}}
    verdict = decide(metrics(per_class=per_class), None, Thresholds(min_class_recall=0.5))

    assert verdict.passed is False
    assert outcomes(verdict)[-2:] == [("min_class_recall[beach]", True), ("min_class_recall[forest]", False)]


def test_class_recall_without_per_class_metrics_fails():
    verdict = decide(metrics(per_class={}), None, Thresholds(min_class_recall=0.5))

    assert ("min_class_recall", False) in outcomes(verdict)


@pytest.mark.parametrize(
    ("candidate", "passed"), [(0.85, True), (0.8499, False), (35 / 50 + 0.15, True)],
    ids=["exactly-at-allowed-drop", "below-allowed-drop", "ratio-of-counts-at-boundary"],
)
def test_absolute_drop_against_champion(candidate, passed):
    verdict = decide(metrics(accuracy=candidate), metrics(accuracy=0.9, version=3),
                     Thresholds(min_accuracy=0.5, max_drop=0.05))

    assert verdict.passed is passed
    check = verdict.checks[-1]
    assert check.name == "max_drop" and check.threshold == pytest.approx(0.85)
    assert verdict.notes == []


def test_relative_drop_is_a_fraction_of_the_champions_value():
    champion = metrics(accuracy=0.8, version=1)
    thresholds = Thresholds(min_accuracy=0.5, max_drop=None, max_relative_drop=0.1)

    assert decide(metrics(accuracy=0.72), champion, thresholds).passed is True
    assert decide(metrics(accuracy=0.71), champion, thresholds).passed is False


def test_min_gain_requires_beating_the_champion():
    champion = metrics(accuracy=0.8, version=1)
    thresholds = Thresholds(min_accuracy=0.5, max_drop=0.0, min_gain=0.02)

    assert outcomes(decide(metrics(accuracy=0.81), champion, thresholds))[-1] == ("min_gain", False)
    assert decide(metrics(accuracy=0.82), champion, thresholds).passed is True


def test_change_checks_use_the_chosen_metric():
    candidate = metrics(accuracy=0.95, macro_f1=0.6)
    champion = metrics(accuracy=0.9, macro_f1=0.8, version=2)

    assert decide(candidate, champion, Thresholds(compare_metric="accuracy")).passed is True
    verdict = decide(candidate, champion, Thresholds(compare_metric="macro_f1"))
    assert verdict.passed is False and verdict.checks[-1].metric == "macro_f1"


def test_a_nan_metric_fails_its_check():
    verdict = decide(metrics(accuracy=math.nan), None, Thresholds(min_accuracy=0.0))

    assert verdict.passed is False
    assert verdict.checks[1].detail == "accuracy is NaN; it must be >= 0.0000 (minimum)"


def test_a_missing_metric_fails_its_check_naming_it():
    candidate = metrics()
    del candidate["macro_f1"]
    verdict = decide(candidate, None, Thresholds(min_macro_f1=0.1))

    assert verdict.passed is False
    assert "macro_f1 is missing from the evaluation" in verdict.checks[-1].detail


def test_a_champion_without_the_compared_metric_fails_the_comparison():
    champion = metrics(version=4)
    champion["accuracy"] = None
    verdict = decide(metrics(), champion, Thresholds())

    assert outcomes(verdict)[-1] == ("champion_comparable", False)


def test_an_unknown_compare_metric_is_refused():
    with pytest.raises(ValueError, match="compare_metric 'recall' is not one of accuracy, macro_f1, weighted_f1"):
        Thresholds(compare_metric="recall")


def test_explain_gives_one_line_per_check_then_the_notes():
    verdict = decide(metrics(accuracy=0.8), metrics(accuracy=0.95, version=7),
                     Thresholds(min_accuracy=0.7, max_drop=0.05))

    assert explain(verdict) == [
        "PASS min_test_images: rows 50 >= 10 (enough held-out images to judge)",
        "PASS min_accuracy: accuracy 0.8000 >= 0.7000 (minimum)",
        "PASS label_set: added: -; removed: - (the same 3 labels as champion v7)",
        "FAIL max_drop: accuracy 0.8000 < 0.9000 (champion v7 0.9500 minus 0.05)",
    ]
    assert explain(decide(metrics(), None, Thresholds()))[-1] == f"NOTE {NO_CHAMPION_NOTE}"


def label_check(verdict):
    [check] = [check for check in verdict.checks if check.name == "label_set"]
    return check


def test_a_candidate_with_a_class_the_champion_lacks_fails_naming_the_class():
    candidate = metrics(accuracy=0.99, labels=[*LABELS, "bird"])
    verdict = decide(candidate, metrics(accuracy=0.8, version=3), Thresholds())

    assert verdict.passed is False
    assert [name for name, passed in outcomes(verdict) if not passed] == ["label_set"]
    assert dataclasses.asdict(label_check(verdict)) == {
        "name": "label_set", "metric": "labels added or removed", "threshold": 0, "observed": 1, "passed": False,
        "detail": "added: bird; removed: - (labels must be champion v3's; allow_label_change lets a run change them)",
        "change": "added: bird; removed: -",
    }
    assert "FAIL label_set: added: bird; removed: - (labels must be champion v3's; allow_label_change lets a run " \
           "change them)" in explain(verdict)


def test_added_and_removed_labels_are_named_sorted_and_counted():
    candidate = metrics(labels=["snowfield", "forest", "ant", "bird"])
    check = label_check(decide(candidate, metrics(version=2), Thresholds()))

    assert check.observed == 5 and check.passed is False
    assert check.detail.startswith("added: ant, bird, snowfield; removed: beach, night_sky (")


def test_the_same_labels_in_another_order_pass():
    check = label_check(decide(metrics(labels=list(reversed(LABELS))), metrics(version=2), Thresholds()))

    assert (check.observed, check.passed) == (0, True)


def test_an_allowed_label_change_passes_and_the_verdict_says_it_was_allowed():
    thresholds = Thresholds(allow_label_change=True)
    verdict = decide(metrics(labels=["beach", "forest", "bird"]), metrics(version=5), thresholds)

    assert verdict.passed is True
    check = label_check(verdict)
    assert (check.observed, check.threshold, check.passed) == (2, None, True)
    assert check.detail == ("added: bird; removed: night_sky (labels differ from champion v5's; the change is "
                               "allowed by allow_label_change)")
    assert verdict.thresholds["allow_label_change"] is True
    assert promotion_reason(verdict) == (
        "verdict passed with a label change allowed by allow_label_change (added: bird; removed: night_sky)")


def test_a_passed_verdict_with_the_champions_labels_is_promoted_for_having_passed():
    assert promotion_reason(decide(metrics(), metrics(version=2), Thresholds())) == "verdict passed"
    assert promotion_reason(decide(metrics(), None, Thresholds())) == "verdict passed"


def test_without_a_champion_there_are_no_labels_to_compare():
    verdict = decide(metrics(labels=["beach", "bird"]), None, Thresholds())

    assert "label_set" not in dict(outcomes(verdict)) and verdict.passed is True


@pytest.mark.parametrize("unrecorded", ["candidate", "champion v4"])
def test_metrics_that_record_no_labels_leave_the_labels_unchecked_and_the_verdict_says_so(unrecorded):
    candidate, champion = metrics(), metrics(version=4)
    del (candidate if unrecorded == "candidate" else champion)["labels"]
    verdict = decide(candidate, champion, Thresholds())

    assert verdict.passed is True and "label_set" not in dict(outcomes(verdict))
    assert verdict.notes == [f"label_set not checked: the evaluation of {unrecorded} records no labels"]


def test_a_verdict_reads_back_from_its_json_as_were_verdicts_written_before_they_had_a_format():
    verdict = dataclasses.replace(decide(metrics(labels=["beach", "bird"]), metrics(version=3), Thresholds()),
                                  candidate_version=4, champion_version=3, run_id="scheduled__1")
    written = json.loads(json.dumps(verdict.to_json()))
    # As evaluate_model wrote it before: no format, and no `change` but in the label check.
    older = {**{key: value for key, value in written.items() if key != "format"},
             "checks": [{key: value for key, value in check.items() if value is not None or key != "change"}
                        for check in written["checks"]]}

    assert Verdict.from_json(written, "verdict.json") == verdict
    assert Verdict.from_json(older, "verdict.json") == verdict
    assert verdict.failed_checks == ["label_set"]


@pytest.mark.parametrize(("document", "problem"), [
    ({"passed": True}, "verdict record lacks checks"),
    ({"passed": "yes", "checks": []}, "verdict record's passed is 'yes', not bool"),
    ({"passed": True, "checks": [{"name": "min_accuracy"}]}, "a verdict's check is malformed"),
    ({"passed": True, "checks": ["min_accuracy"]}, "a verdict's check is malformed"),
])
def test_a_malformed_verdict_is_refused_in_one_line_naming_its_file(document, problem):
    with pytest.raises(InputError, match=rf"^versions/2/verdict.json: {re.escape(problem)}.*re-run evaluate_model"):
        Verdict.from_json(document, "versions/2/verdict.json")
