"""Promote the run's candidate to champion if its verdict passed and the champion is still the one it was judged
against (compare-and-swap). The model is loaded with Spark first, so a version that cannot be served is never
promoted. A retry after a successful promotion changes nothing.
"""

from __future__ import annotations

import logging

from imagepipe import cli
from imagepipe.errors import InputError
from imagepipe.evaluation import explain
from imagepipe.lake import Lake
from imagepipe.registry import Registry
from imagepipe.spark import get_spark

log = logging.getLogger("promote_model")


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("promote_model", __doc__, "the run's candidate must have a verdict")
    cli.add_model_name(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from pyspark.ml import PipelineModel

    args = parse_args(argv)
    lake = Lake(args.lake_root)
    registry = Registry(lake.registry, args.model_name)
    version = lake.read_run(args.run_id, "candidate")["version"]
    verdict = registry.document(version, "verdict")
    if verdict is None:
        raise InputError(f"version {version} has no verdict; run evaluate_model for run {args.run_id} first")
    if not verdict["passed"]:
        raise InputError(f"version {version} failed its gate, not promoted: {'; '.join(explain(verdict))}")
    get_spark("promote_model")
    PipelineModel.load(registry.model_uri(version))
    changed = registry.promote(version, verdict["champion_version"], args.run_id, reason="passed gate")
    lake.write_run(args.run_id, "promotion", {"version": version, "previous": verdict["champion_version"], "changed": changed})
    log.info("champion of %s is version %d%s", args.model_name, version, "" if changed else " (already)")


if __name__ == "__main__":
    cli.run(main)
