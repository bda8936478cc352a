"""Evaluate the run's candidate against the current champion on the same held-out test images and write the
verdict the gate reads: metrics.json and verdict.json in the candidate's registry version.
"""

from __future__ import annotations

import logging

from imagepipe import cli, storage
from imagepipe.errors import InputError
from imagepipe.evaluation import classification_metrics, decide, explain, score
from imagepipe.lake import Lake
from imagepipe.spark import get_spark
from imagepipe.training import check_one_feature_space, features_up_to, with_split
from imagepipe.windows import Window

log = logging.getLogger("evaluate_model")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("evaluate_model", __doc__, "the run must have trained a candidate")
    cli.add_model_name(parser)
    parser.add_argument(
        "--min-accuracy", type=cli.FRACTION, default=0.8,
        help="lowest test accuracy a candidate may have (default: %(default)s)",
    )
    parser.add_argument(
        "--max-accuracy-drop", type=cli.FRACTION, default=0.01,
        help="how far below the champion's test accuracy a candidate may fall (default: %(default)s)",
    )
    return parser.parse_args(argv)


def test_split(spark, lake: Lake, fingerprint: str, window_end_id: str):
    features = spark.read.parquet(storage.spark_path(lake.features(fingerprint)))
    test = with_split(features_up_to(features, window_end_id)).filter("split = 'test'")
    check_one_feature_space(test, fingerprint)
    return test


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    lake = Lake(args.lake_root)
    registry = cli.open_registry(args)
    window_end_id = Window.from_json(lake.read_run(args.run_id, "window")).end_id
    version = lake.read_run(args.run_id, "candidate")["version"]
    metadata = registry.metadata(version)
    spark = get_spark("evaluate_model")

    test = test_split(spark, lake, metadata["fingerprint"], window_end_id).persist()
    if test.isEmpty():
        raise InputError(f"no test images under feature space {metadata['fingerprint']}; ingest more images")
    candidate = classification_metrics(score(registry.load_model(version), test))

    champion_version = registry.champion_version()
    champion = None
    if champion_version is not None and champion_version != version:
        champion_fingerprint = registry.metadata(champion_version)["fingerprint"]
        champion_test = test
        if champion_fingerprint != metadata["fingerprint"]:
            # The same test images, featurised in the champion's own feature space.
            champion_test = test_split(spark, lake, champion_fingerprint, window_end_id).join(
                test.select("sha256"), "sha256", "left_semi"
            )
        champion = classification_metrics(score(registry.load_model(champion_version), champion_test))
        champion["version"] = champion_version

    verdict = decide(candidate, champion, args.min_accuracy, args.max_accuracy_drop)
    verdict.update({"candidate_version": version, "champion_version": champion_version, "run_id": args.run_id})
    registry.write_document(version, "metrics", {"candidate": candidate, "champion": champion})
    registry.write_document(version, "verdict", verdict)
    for line in explain(verdict):
        log.info(line)
    log.info("verdict for version %d: %s", version, "PASSED" if verdict["passed"] else "FAILED")


if __name__ == "__main__":
    cli.run(main)
