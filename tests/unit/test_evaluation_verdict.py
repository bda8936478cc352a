import pytest

from imagepipe.evaluation import decide, explain


def test_first_model_passes_on_minimum_accuracy_alone():
    verdict = decide({"accuracy": 0.8, "weighted_f1": 0.79, "rows": 50}, None, min_accuracy=0.7, max_accuracy_drop=0.05)

    assert verdict == {
        "passed": True,
        "checks": [
            {
                "name": "min_accuracy",
                "value": 0.8,
                "threshold": 0.7,
                "passed": True,
                "detail": "test accuracy 0.8000 must be >= 0.7000",
            }
        ],
    }


def test_accuracy_below_minimum_fails():
    verdict = decide({"accuracy": 0.5}, None, min_accuracy=0.7, max_accuracy_drop=0.05)

    assert verdict["passed"] is False
    assert [check["passed"] for check in verdict["checks"]] == [False]


def test_accuracy_equal_to_minimum_passes():
    verdict = decide({"accuracy": 0.75}, None, min_accuracy=0.75, max_accuracy_drop=0.0)

    assert verdict["passed"] is True


def test_candidate_within_allowed_drop_of_champion_passes():
    verdict = decide({"accuracy": 0.875}, {"accuracy": 0.9}, min_accuracy=0.5, max_accuracy_drop=0.05)

    champion_check = verdict["checks"][1]
    assert verdict["passed"] is True
    assert champion_check["name"] == "not_worse_than_champion"
    assert champion_check["threshold"] == pytest.approx(0.85)
    assert champion_check["detail"] == "test accuracy 0.8750 must be >= champion's 0.9000 minus 0.0500"


def test_candidate_worse_than_champion_fails_even_above_minimum():
    verdict = decide({"accuracy": 0.8}, {"accuracy": 0.95}, min_accuracy=0.5, max_accuracy_drop=0.05)

    assert verdict["passed"] is False
    assert [(check["name"], check["passed"]) for check in verdict["checks"]] == [
        ("min_accuracy", True),
        ("not_worse_than_champion", False),
    ]


def test_candidate_tying_champion_with_no_allowed_drop_passes():
    verdict = decide({"accuracy": 0.75}, {"accuracy": 0.75}, min_accuracy=0.5, max_accuracy_drop=0.0)

    assert verdict["passed"] is True


def test_candidate_exactly_at_allowed_drop_passes_with_exact_binary_values():
    # 0.75 - 0.25 is exact in binary floating point.
    verdict = decide({"accuracy": 0.5}, {"accuracy": 0.75}, min_accuracy=0.5, max_accuracy_drop=0.25)

    assert verdict["passed"] is True


def test_candidate_exactly_at_allowed_drop_passes():
    verdict = decide({"accuracy": 35 / 50}, {"accuracy": 40 / 50}, min_accuracy=0.5, max_accuracy_drop=0.1)

    assert verdict["passed"] is True


def test_explain_gives_one_line_per_check():
    verdict = decide({"accuracy": 0.8}, {"accuracy": 0.95}, min_accuracy=0.7, max_accuracy_drop=0.05)

    assert explain(verdict) == [
        "PASS min_accuracy: test accuracy 0.8000 must be >= 0.7000",
        "FAIL not_worse_than_champion: test accuracy 0.8000 must be >= champion's 0.9500 minus 0.0500",
    ]
