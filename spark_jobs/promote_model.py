"""Promote the run's candidate to champion if its verdict passed and the champion is still the one it was judged
against (compare-and-swap). Every file of the version is checked against its sha256 first: evaluate_model served the
verdict's predictions from those very files, so an intact version is one that loads. A retry after a successful
promotion changes nothing. The job does no Spark work and starts no Spark session: the pipeline runs it with the
worker's Python (spark-submit runs it the same way).

Backfill runs (--run-type backfill) keep the champion unless --promote-on-backfill is given: they still train,
evaluate and write their verdict. A candidate that failed its gate is promoted only when the run's gate decided to
force it (the gate record, written by the pipeline's gate task from the run's force_promote and force_reason) or,
run by hand, with --force-reason; the history records it as forced with that reason.
"""

from __future__ import annotations

import logging
import re

from imagepipe import cli, params
from imagepipe.errors import InputError
from imagepipe.gate import explain, promotion_reason
from imagepipe.lake import Lake
from imagepipe.records import CandidateRecord, GateRecord, PromotionRecord
from imagepipe.registry import open_registry

log = logging.getLogger("promote_model")


def _run_type(text: str) -> str:
    # The plain name only: an enum rendered as "DagRunType.BACKFILL" must fail loudly, not pass as a manual run.
    if not re.fullmatch(r"[a-z_]+", text):
        raise ValueError("give the plain lower-case name, e.g. backfill")
    return text


def parse_args(argv: list[str] | None):
    parser = cli.job_parser("promote_model", __doc__, "the run's candidate must have a verdict")
    cli.add_model_name(parser)
    parser.add_argument(
        "--run-type", default="manual", type=cli.checked(_run_type, "an Airflow run type's name"),
        help="Airflow run type (manual, scheduled, backfill, ...); backfill runs keep the champion "
             "(default: %(default)s)",
    )
    params.PROMOTE.add_to(parser)
    parser.add_argument(
        "--force-reason", default="",
        help="run by hand: promote even though the verdict failed, recording this reason in the history as a forced "
             "promotion (in the pipeline, the run's gate record says whether it is forced)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    lake = Lake(args.lake_root)
    registry = open_registry(args.model_name, args.registry_uri, args.lake_root)
    version = lake.read_record(args.run_id, CandidateRecord).version
    verdict = registry.verdict(version)
    if verdict is None:
        raise InputError(f"version {version} has no verdict; run evaluate_model for run {args.run_id} first")
    outcome = verdict.outcome
    if args.run_type == "backfill" and not args.promote_on_backfill:
        log.info("backfill run %s: version %d (verdict %s) is not promoted and the champion stays version %s; "
                 "trigger with promote_on_backfill to let a backfill promote", args.run_id, version, outcome,
                 registry.champion_version())
        lake.write_record(args.run_id, PromotionRecord(version, changed=False, skipped="backfill run"))
        return
    if verdict.passed:
        kind, reason = "promotion", promotion_reason(verdict)
    else:
        gate = lake.find_record(args.run_id, GateRecord)
        forced_by_gate = gate.forced_reason if gate is not None and gate.version == version else None
        kind, reason = "forced", (args.force_reason.strip() or forced_by_gate or "")
    if not reason:
        raise InputError(f"version {version} failed its gate, not promoted: {'; '.join(explain(verdict))} "
                         "(--force-reason promotes it anyway)")
    if kind == "forced":
        log.warning("version %d failed its gate; promoting it anyway (forced): %s", version, reason)
    registry.verify(version)
    changed = registry.promote(version, verdict.champion_version, args.run_id, reason, kind=kind)
    lake.write_record(args.run_id, PromotionRecord(version, changed, previous=verdict.champion_version))
    log.info("champion of %s is version %d%s", args.model_name, version, "" if changed else " (already)")


if __name__ == "__main__":
    cli.run(main)
