"""Whether a run's new images call for a new model.

Training refits on every labelled image of the lake, so a run that adds 1 % of images costs about as much to train
as the first one (bench/RESULTS.md). A run trains when the images whose windows ended after the champion's training
window reach `retrain_min_new_share` of the images the champion was trained on; below that, the run keeps the
champion and skips training, evaluation and promotion. It always trains when there is no champion, or when the
champion was trained in another feature space or with other classifier settings: its model says nothing about them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from imagepipe.lake import WINDOW_COLUMN
from imagepipe.records import FeaturesRecord, WindowRecord
from imagepipe.windows import EPOCH, Window, parse_timestamp


@dataclass(frozen=True)
class RetrainCheck:
    due: bool
    reason: str  # one line for the task's log, and the skip's message


def check(champion: int | None, metadata: Mapping | None, fingerprint: str, model: Mapping,
          training_days: int | None, window_counts: Mapping[str, int], window_end_id: str,
          min_new_share: float) -> RetrainCheck:
    """The run's check: `champion` is the champion's version and `metadata` its registry metadata; the run trains
    in `fingerprint`'s feature space with the classifier settings `model` (ModelSpec.to_json) and training_days;
    `window_counts` are the feature table's rows per window id, and the run's window ends at `window_end_id`."""
    if min_new_share == 0:
        return RetrainCheck(True, "retrain_min_new_share is 0: every run trains")
    if champion is None or metadata is None:
        return RetrainCheck(True, "there is no champion yet")
    if metadata.get("fingerprint") != fingerprint:
        return RetrainCheck(True, f"champion version {champion} was trained in feature space "
                                  f"{metadata.get('fingerprint')}, this run's is {fingerprint}")
    if metadata.get("model") != dict(model) or metadata.get("training_days") != training_days:
        return RetrainCheck(True, f"champion version {champion} was trained with other classifier settings or "
                                  "training days than this run's")
    trained_up_to = Window(EPOCH, parse_timestamp(metadata["data_window_end"])).end_id
    new = sum(rows for window_id, rows in window_counts.items()
              if trained_up_to < Window.from_id(window_id).end_id <= window_end_id)
    trained_on = sum(sum(labels.values()) for labels in metadata["rows"].values())
    share = new / max(trained_on, 1)
    figures = (f"{new} new images since champion version {champion}'s training, {share:.1%} of the {trained_on} "
               f"it was trained on")
    if share >= min_new_share:
        return RetrainCheck(True, f"{figures}, at least retrain_min_new_share={min_new_share:g}")
    return RetrainCheck(False, f"{figures}, below retrain_min_new_share={min_new_share:g}: training, evaluation "
                               f"and promotion are skipped and version {champion} stays champion; trigger with "
                               "retrain_min_new_share=0 to train anyway")


def check_run(lake, registry, run_id: str, model: Mapping, training_days: int | None,
              min_new_share: float) -> RetrainCheck:
    """The check of run_id, whose features are extracted, against the registry's champion (check's arguments read
    from the lake and the registry)."""
    champion = registry.champion_version()
    fingerprint = lake.read_record(run_id, FeaturesRecord).fingerprint
    counts = window_counts(lake.features(fingerprint)) if champion is not None else {}
    return check(champion, None if champion is None else registry.metadata(champion), fingerprint, model,
                 training_days, counts, lake.read_record(run_id, WindowRecord).window.end_id, min_new_share)


def window_counts(table) -> dict[str, int]:
    """Rows per window of a feature table (imagepipe.lake.Table), from its metadata: no data file is read."""
    from imagepipe import tables

    partitions = tables.python_table(table).inspect.partitions().select(["partition", "record_count"]).to_pylist()
    return {row["partition"][WINDOW_COLUMN]: row["record_count"] for row in partitions}
