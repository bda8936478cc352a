"""Evaluate the run's candidate against the current champion on the same held-out test images and write what the
gate reads: the gallery's thumbnails (thumbnails/<sha256>.jpg), metrics.json (with the gallery), report.md,
report.html, its pictures and, last, verdict.json in the candidate's registry version. A verdict is always written,
pass or fail; a retry after it keeps it.
"""

from __future__ import annotations

import dataclasses
import logging

from imagepipe import cli, params, report, tables
from imagepipe.errors import InputError
from imagepipe.evaluation import classification_metrics, score
from imagepipe.features import FEATURE_COLUMNS, extract_features, feature_space_spec, split_failures
from imagepipe.gallery import gallery
from imagepipe.gate import Thresholds, decide, explain
from imagepipe.lake import Lake
from imagepipe.records import CandidateRecord, WindowRecord
from imagepipe.registry import open_registry
from imagepipe.spark import get_spark
from imagepipe.training import model_labels, split_features

log = logging.getLogger("evaluate_model")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("evaluate_model", __doc__, "the run must have trained a candidate")
    cli.add_model_name(parser)
    params.EVALUATE.add_to(parser)
    return parser.parse_args(argv)


def thresholds(args) -> Thresholds:
    return Thresholds(**{param.name: getattr(args, param.name) for param in params.EVALUATE.params})


def test_split(spark, lake: Lake, fingerprint: str, window_end_id: str, snapshot_id: int | None = None):
    return (split_features(spark, lake, fingerprint, window_end_id, snapshot_id=snapshot_id)
            .filter("split = 'test'").select(*FEATURE_COLUMNS))


def in_feature_space(spark, lake: Lake, test, fingerprint: str, window_end_id: str):
    """The same test images in another feature space: its stored vectors where it has them, the rest extracted now
    with that space's own backbone, weights and preprocessing (not stored: they are the champion's business)."""
    spec = feature_space_spec(lake, fingerprint)
    stored = test_split(spark, lake, fingerprint, window_end_id).join(test.select("sha256"), "sha256", "left_semi")
    missing = test.select("sha256").join(stored.select("sha256"), "sha256", "left_anti").persist()
    count = missing.count()
    if count == 0:
        return stored
    log.info("extracting %d test images in feature space %s", count, fingerprint)
    images = tables.read(spark, lake.images).join(missing, "sha256", "left_semi")
    extracted, _ = split_failures(extract_features(images, spec, fingerprint))
    return stored.unionByName(extracted)


def recorded_labels(metadata: dict, model) -> list[str]:
    """The version's labels in index order as its metadata records them; for a version recorded without them, as
    its model's label indexer holds them."""
    return metadata.get("labels") or model_labels(model)


def measure(spark, lake: Lake, registry, version: int, metadata: dict,
            window_end_id: str) -> tuple[dict, dict[str, bytes]]:
    """(metrics of the candidate and of the current champion on the same test images, with the candidate's gallery;
    the gallery's thumbnails by file name)."""
    features = lake.features(metadata["fingerprint"])
    snapshot = tables.current_snapshot(spark, features)
    test = test_split(spark, lake, metadata["fingerprint"], window_end_id, snapshot).persist()
    if test.isEmpty():
        raise InputError(f"no test images under feature space {metadata['fingerprint']}; ingest more images")
    model = registry.load_model(version)
    predictions = score(model, test).persist()
    candidate = classification_metrics(predictions, recorded_labels(metadata, model))
    examples, thumbnails = gallery(spark, lake, predictions, candidate["per_class"])
    predictions.unpersist()

    champion_version = registry.champion_version()
    champion = None
    if champion_version is not None and champion_version != version:
        champion_metadata = registry.metadata(champion_version)
        champion_test = test
        if champion_metadata["fingerprint"] != metadata["fingerprint"]:
            log.info("champion %d was trained on %s: scoring it on the same test images in its own feature space",
                     champion_version, champion_metadata["fingerprint"])
            champion_test = in_feature_space(spark, lake, test, champion_metadata["fingerprint"], window_end_id)
        champion_model = registry.load_model(champion_version)
        champion_labels = recorded_labels(champion_metadata, champion_model)
        champion = {**classification_metrics(score(champion_model, champion_test), champion_labels),
                    "version": champion_version}
    metrics = {"candidate": candidate, "champion": champion, "champion_version": champion_version, "gallery": examples,
               # The lineage of the figures: the candidate's test rows are those of this snapshot.
               "snapshots": {features.identifier: snapshot}}
    return metrics, thumbnails


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    lake = Lake(args.lake_root)
    registry = open_registry(args.model_name, args.registry_uri, args.lake_root)
    window_end_id = lake.read_record(args.run_id, WindowRecord).window.end_id
    version = lake.read_record(args.run_id, CandidateRecord).version
    if registry.verdict(version) is not None:
        log.info("version %d already has its verdict; keeping it", version)
        return
    metadata = registry.metadata(version)
    metrics = registry.document(version, "metrics")
    if metrics is None:
        metrics, thumbnails = measure(get_spark("evaluate_model"), lake, registry, version, metadata, window_end_id)
        registry.write_files(version, thumbnails)  # first: metrics never name a thumbnail the version lacks
        registry.write_document(version, "metrics", metrics)
    else:
        # An interrupted attempt measured already; its metrics are part of the immutable version, so the report
        # and verdict are made from them.
        log.info("version %d already has its metrics; deciding on them", version)
    candidate, champion = metrics["candidate"], metrics["champion"]

    verdict = dataclasses.replace(decide(candidate, champion, thresholds(args)), candidate_version=version,
                                  champion_version=metrics["champion_version"], run_id=args.run_id)
    registry.write_files(version, report.files(metadata, candidate, champion, verdict, metrics.get("gallery")))
    registry.write_verdict(version, verdict)
    for line in explain(verdict):
        log.info(line)
    log.info("verdict for version %d: %s (accuracy %.4f on %d test images)", version,
             verdict.outcome, candidate["accuracy"], candidate["rows"])


if __name__ == "__main__":
    cli.run(main)
