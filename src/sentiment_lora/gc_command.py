"""``sentiment-lora gc``: free disk by removing old run directories (see ``operations.gc``)."""

import argparse
from pathlib import Path

from sentiment_lora.cli_options import ModelOptions
from sentiment_lora.config import RunOptions
from sentiment_lora.errors import UserError
from sentiment_lora.operations.disk import mib

GC_OPTIONS = ModelOptions({"options": RunOptions}, only=("reports_dir", "registry_dir"))
KEEP_RUNS = 10


def cmd_gc(args: argparse.Namespace) -> int:
    """Remove run directories beyond the newest ``--keep-runs``; print what was freed."""
    from sentiment_lora.operations.gc import run_gc

    options = GC_OPTIONS.build(args, "options")
    if args.keep_runs < 1:
        raise UserError(f"--keep-runs: keep at least 1 run (got {args.keep_runs})")
    try:
        plan = run_gc(
            Path(options.reports_dir),
            Path(options.registry_dir),
            keep_runs=args.keep_runs,
            dry_run=args.dry_run,
        )
    except (TimeoutError, ValueError) as exc:  # another run holds the registry; a bad registry
        raise UserError(str(exc)) from None
    verb = "would remove" if args.dry_run else "removed"
    for removal in plan.remove:
        print(f"{verb} {removal.path} ({mib(removal.bytes)}): {removal.why}")
    for run_id, why in plan.kept.items():
        print(f"kept {run_id}: {why}")
    total = f"{mib(plan.freed)} in {len(plan.remove)} run directories"
    print(f"{'dry run: would free' if args.dry_run else 'freed'} {total}")
    return 0


def add_gc_parser(sub: argparse._SubParsersAction) -> None:
    """The ``gc`` subcommand."""
    gc = sub.add_parser(
        "gc",
        help="free disk: remove old run directories (never the champion's or the latest run)",
        description=(
            "Remove published run directories beyond the newest --keep-runs. Never removed: "
            "the champion's run, the run reports/latest points to, runs being written, the "
            "registry and data versions."
        ),
    )
    gc.add_argument(
        "--keep-runs",
        type=int,
        default=KEEP_RUNS,
        metavar="N",
        help=f"newest runs to keep (default {KEEP_RUNS})",
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would go, remove nothing")
    GC_OPTIONS.add_to(gc)
    gc.set_defaults(func=cmd_gc, uses_models=False)
