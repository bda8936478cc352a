"""The promotion gate: a pure function from the candidate's and the champion's test metrics to a verdict that lists
every check with its metric, threshold, observed value and result. No Spark, no I/O: the evaluate job writes what
this returns (a version's verdict.json), the DAG's gate task, promote and the summary read it through Verdict."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import ClassVar

from imagepipe.errors import InputError
from imagepipe.records import RunRecord

# Metrics are ratios of counts: a candidate exactly at a threshold must not fail on binary rounding (0.8 - 0.1).
TOLERANCE = 1e-9
COMPARABLE_METRICS = ("accuracy", "macro_f1", "weighted_f1")
NO_CHAMPION_NOTE = "no champion yet: only the value thresholds apply"
NO_LABELS = "-"  # an empty side of a label change


@dataclass(frozen=True)
class Thresholds:
    """What a candidate must reach. None switches a check off."""

    min_accuracy: float | None = 0.8
    min_macro_f1: float | None = None
    min_class_recall: float | None = None
    min_test_images: int = 10
    compare_metric: str = "accuracy"
    max_drop: float | None = 0.01  # absolute: candidate >= champion - max_drop
    max_relative_drop: float | None = None  # relative: candidate >= champion * (1 - max_relative_drop)
    min_gain: float | None = None  # candidate >= champion + min_gain
    allow_label_change: bool = False  # a candidate may add or remove classes the champion has

    def __post_init__(self):
        if self.compare_metric not in COMPARABLE_METRICS:
            raise ValueError(f"compare_metric {self.compare_metric!r} is not one of {', '.join(COMPARABLE_METRICS)}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One check of a verdict: the metric it reads, the threshold, what was observed, and the line that says so."""

    name: str
    metric: str
    threshold: float | None  # None: a check that is reported but cannot fail (an allowed label change)
    observed: float | None  # None: the evaluation lacks the metric (the check fails, saying so)
    passed: bool
    detail: str
    change: str | None = None  # label_set's: the labels added and removed


@dataclass(frozen=True)
class Verdict(RunRecord):
    """The gate's verdict on a candidate version, kept as the version's verdict.json: passed only if every check
    passed."""

    KIND: ClassVar[str] = "verdict"
    REMEDY: ClassVar[str] = "re-run evaluate_model on a new version"
    passed: bool
    checks: list  # of Check
    notes: list  # of str: what the verdict could not check, and why
    thresholds: dict  # Thresholds.to_json() of the run
    candidate_version: int | None
    champion_version: int | None  # the champion it was judged against, which promote expects still to be champion
    run_id: str | None
    DEFAULTS: ClassVar[dict] = {"notes": [], "thresholds": {}, "candidate_version": None, "champion_version": None,
                                "run_id": None}

    @property
    def outcome(self) -> str:
        """PASSED or FAILED, as logs, reports and pages say it."""
        return "PASSED" if self.passed else "FAILED"

    @property
    def failed_checks(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]

    def to_json(self) -> dict:
        return {**super().to_json(), "checks": [asdict(check) for check in self.checks]}

    @classmethod
    def from_json(cls, document, where: str) -> Verdict:
        verdict = super().from_json(document, where)
        names = {field.name for field in dataclasses.fields(Check)}
        try:
            checks = [Check(**{key: value for key, value in check.items() if key in names}) for check in verdict.checks]
        except (AttributeError, TypeError) as error:
            raise InputError(f"{where}: a verdict's check is malformed ({error}); {cls.REMEDY}") from None
        return dataclasses.replace(verdict, checks=checks)


def _number(metrics: dict, metric: str) -> float | None:
    value = metrics.get(metric)
    return None if value is None else float(value)


def _check(name: str, metric: str, observed: float | None, threshold: float, rule: str, digits: int = 4) -> Check:
    """At-least check; a missing or NaN observation fails, saying so."""
    if observed is None:
        passed = False
        detail = f"{metric} is missing from the evaluation; it must be >= {threshold:.{digits}f} ({rule})"
    elif math.isnan(observed):
        passed, detail = False, f"{metric} is NaN; it must be >= {threshold:.{digits}f} ({rule})"
    else:
        passed = observed >= threshold - TOLERANCE
        detail = f"{metric} {observed:.{digits}f} {'>=' if passed else '<'} {threshold:.{digits}f} ({rule})"
    return Check(name, metric, threshold, observed, passed, detail)


def _label_check(candidate_labels: list[str], champion_labels: list[str], version, allowed: bool) -> Check:
    """The candidate must answer with the champion's classes: promoting a class added or removed changes what the
    model answers, which no accuracy shows. Observed: how many labels were added or removed."""
    added = sorted(set(candidate_labels) - set(champion_labels))
    removed = sorted(set(champion_labels) - set(candidate_labels))
    change = f"added: {', '.join(added) or NO_LABELS}; removed: {', '.join(removed) or NO_LABELS}"
    if not added and not removed:
        rule = f"the same {len(candidate_labels)} labels as champion v{version}"
    elif allowed:
        rule = f"labels differ from champion v{version}'s; the change is allowed by allow_label_change"
    else:
        rule = f"labels must be champion v{version}'s; allow_label_change lets a run change them"
    return Check("label_set", "labels added or removed", None if allowed else 0, len(added) + len(removed),
                 allowed or not (added or removed), f"{change} ({rule})", change)


def promotion_reason(verdict: Verdict) -> str:
    """Why a passed candidate becomes champion, as the history records it: a label change the run allowed is named
    there, since no metric shows that the model now answers with other classes."""
    changed = [check for check in verdict.checks if check.name == "label_set" and check.observed]
    if not changed:
        return "verdict passed"
    return f"verdict passed with a label change allowed by allow_label_change ({changed[0].change})"


def decide(candidate: dict, champion: dict | None, thresholds: Thresholds) -> Verdict:
    """The verdict on a candidate: passed only if every check passed.

    `candidate` and `champion` are the metrics dicts of the evaluation (accuracy, macro_f1, weighted_f1, rows,
    per_class: {label: {recall, ...}}, labels: the model's classes). Without a champion only the value thresholds
    apply and `notes` says so; so does it when either side's metrics do not record the model's labels (evaluated
    before they did), leaving the labels unchecked.
    """
    t = thresholds
    rows = candidate.get("rows")  # a count: shown as one, not as a rate with four decimals
    checks = [_check("min_test_images", "rows", None if rows is None else int(rows), t.min_test_images,
                     "enough held-out images to judge", digits=0)]
    if t.min_accuracy is not None:
        checks.append(_check("min_accuracy", "accuracy", _number(candidate, "accuracy"), t.min_accuracy, "minimum"))
    if t.min_macro_f1 is not None:
        checks.append(_check("min_macro_f1", "macro_f1", _number(candidate, "macro_f1"), t.min_macro_f1, "minimum"))
    if t.min_class_recall is not None:
        per_class = candidate.get("per_class") or {}
        if not per_class:
            checks.append(_check("min_class_recall", "recall", None, t.min_class_recall, "every class"))
        for label, row in sorted(per_class.items()):
            if row.get("support", 1) > 0:
                checks.append(_check(f"min_class_recall[{label}]", f"recall[{label}]", _number(row, "recall"),
                                     t.min_class_recall, "every class with test images"))
    notes = []
    if champion is None:
        notes.append(NO_CHAMPION_NOTE)
    else:
        metric = t.compare_metric
        observed = _number(candidate, metric)
        reference = _number(champion, metric)
        version = champion.get("version")
        unrecorded = [side for side, metrics in (("candidate", candidate), (f"champion v{version}", champion))
                      if metrics.get("labels") is None]
        if unrecorded:
            notes.append(f"label_set not checked: the evaluation of {' and '.join(unrecorded)} records no labels")
        else:
            checks.append(_label_check(candidate["labels"], champion["labels"], version, t.allow_label_change))
        if reference is None or math.isnan(reference):
            # A champion whose metric cannot be read cannot be compared against: fail rather than wave through.
            checks.append(_check("champion_comparable", f"champion {metric}", reference, 0.0,
                                 f"champion version {version} must have a {metric}"))
        else:
            if t.max_drop is not None:
                checks.append(_check("max_drop", metric, observed, reference - t.max_drop,
                                     f"champion v{version} {reference:.4f} minus {t.max_drop:g}"))
            if t.max_relative_drop is not None:
                checks.append(_check("max_relative_drop", metric, observed, reference * (1 - t.max_relative_drop),
                                     f"champion v{version} {reference:.4f} minus {t.max_relative_drop:.2%} of it"))
            if t.min_gain is not None:
                checks.append(_check("min_gain", metric, observed, reference + t.min_gain,
                                     f"champion v{version} {reference:.4f} plus {t.min_gain:g}"))
    # Which versions and run it judged is the evaluate job's to fill in (dataclasses.replace).
    return Verdict(passed=all(check.passed for check in checks), checks=checks, notes=notes, thresholds=t.to_json(),
                   candidate_version=None, champion_version=None, run_id=None)


def explain(verdict: Verdict) -> list[str]:
    """One line per check (and note), for logs and summaries."""
    lines = [f"{'PASS' if check.passed else 'FAIL'} {check.name}: {check.detail}" for check in verdict.checks]
    return lines + [f"NOTE {note}" for note in verdict.notes]

