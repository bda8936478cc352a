import json

import pytest

from imagepipe.drift import DriftCheck, DriftReport, Reference, explain, proportions, psi
from imagepipe.errors import InputError


def test_psi_of_a_shifted_mix_is_the_sum_over_bins_of_the_difference_times_the_log_ratio():
    # (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5) = 0.3 * 0.470004 + 0.3 * 0.916291
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(0.415888, abs=1e-6)


def test_psi_of_the_same_proportions_is_zero_and_it_is_symmetric():
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0
    assert psi([0.1, 0.9], [0.6, 0.4]) == pytest.approx(psi([0.6, 0.4], [0.1, 0.9]))


def test_an_empty_bin_counts_as_epsilon_so_psi_stays_finite():
    # (0.5 - 1) ln(0.5 / 1) + (0.5 - 1e-4) ln(0.5 / 1e-4) = 0.346574 + 0.4999 * 8.517193
    assert psi([1.0, 0.0], [0.5, 0.5]) == pytest.approx(4.604319, abs=1e-6)
    assert psi([0.0, 1.0], [0.0, 1.0]) == 0  # empty in both: no shift


def test_psi_refuses_bins_that_do_not_match():
    with pytest.raises(ValueError, match="2 reference bins, 3 batch bins"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_proportions_of_counts_and_of_nothing():
    assert proportions([3, 1, 0]) == (0.75, 0.25, 0.0)
    assert proportions([0, 0]) == (0.0, 0.0)


REPORT = DriftReport(
    reference_version=3, images=120,
    checks=(DriftCheck("class_mix_psi", 0.41, 0.25, True), DriftCheck("top_probability_psi", 0.02, 0.25, False),
            DriftCheck("feature_psi_max", 0.3, 0.25, True)),
    feature_components=(0.3, 0.12),
)


def test_a_report_with_a_check_over_its_threshold_is_an_alarm_and_explains_each_check_in_a_line():
    assert REPORT.alarm is True
    assert explain(REPORT) == [
        "class_mix_psi 0.41 > 0.25: alarm",
        "top_probability_psi 0.02 <= 0.25: ok",
        "feature_psi_max 0.30 > 0.25: alarm (components 0.30, 0.12)",
    ]
    calm = DriftReport(3, 120, (DriftCheck("class_mix_psi", 0.1, 0.25, False),))
    assert calm.alarm is False


def test_a_skipped_report_raises_no_alarm_and_says_why():
    skipped = DriftReport(1, 0, skipped="version 1 has no drift reference")

    assert skipped.alarm is False
    assert explain(skipped) == ["drift not judged: version 1 has no drift reference"]


def test_a_report_reads_back_what_it_wrote_through_json():
    document = json.loads(json.dumps(REPORT.to_json()))

    assert document["format"] == 1 and document["alarm"] is True
    assert set(document) == {"format", "reference_version", "images", "checks", "feature_components", "skipped",
                             "alarm"}
    assert document["checks"][0] == {"name": "class_mix_psi", "value": 0.41, "threshold": 0.25, "alarm": True}
    assert DriftReport.from_json(document) == REPORT
    skipped = DriftReport(2, 7, skipped="7 images scored")
    assert DriftReport.from_json(json.loads(json.dumps(skipped.to_json()))) == skipped


def test_a_reference_reads_back_what_it_wrote_through_json():
    reference = Reference(labels=("beach", "night_sky"), class_mix=(0.5, 0.5), top_probability=None,
                          components=((0.1, 0.2, 0.3),), feature_edges=((-1.0, 0.0, 1.0),),
                          feature_proportions=((0.25, 0.25, 0.25, 0.25),), heldout_images=8, train_images=32)

    assert Reference.from_json(json.loads(json.dumps(reference.to_json()))) == reference


@pytest.mark.parametrize(("document", "message"), [
    ({**REPORT.to_json(), "format": 2}, r"^drift report has format 2, not 1; write it with this version"),
    ({key: value for key, value in REPORT.to_json().items() if key != "checks"}, r"^drift report lacks checks; "),
    ({**REPORT.to_json(), "checks": [{"name": "class_mix_psi"}]}, r"^drift report has a malformed check \("),
    (["not", "a", "record"], r"^drift report has format 'list', not 1"),
])
def test_a_malformed_report_is_refused_in_one_line(document, message):
    with pytest.raises(InputError, match=message) as refused:
        DriftReport.from_json(document)
    assert "\n" not in str(refused.value)


def test_a_reference_missing_its_fields_is_refused_naming_them():
    with pytest.raises(InputError, match="^drift reference lacks class_mix, components, feature_edges, "):
        Reference.from_json({"format": 1, "labels": ["beach"]})
