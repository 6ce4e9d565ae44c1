"""``sentiment-lora lineage``: print the chain through a data version or a run."""

import argparse
from pathlib import Path

from sentiment_lora.cli_options import ModelOptions
from sentiment_lora.config import RunOptions
from sentiment_lora.errors import user_error
from sentiment_lora.operations.data_home import DATA_HOME_ENV, DEFAULT_DATA_HOME, data_home

LINEAGE_OPTIONS = ModelOptions({"options": RunOptions}, only=("registry_dir",))


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print data version -> runs -> configs -> registry versions -> champion periods."""
    from sentiment_lora.operations.lineage import lineage

    registry_dir = Path(LINEAGE_OPTIONS.build(args, "options").registry_dir)
    data_dir = Path(args.data_dir) if args.data_dir else data_home()
    try:
        lines = lineage(args.target, data_dir=data_dir, registry_dir=registry_dir)
    except ValueError as exc:  # a damaged manifest, ledger or registry file
        raise user_error(exc)  # noqa: B904 (a UserError is re-raised as is)
    print("\n".join(lines))
    return 0


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, defaulting to the live data directory (``data add``, ``data init`` too)."""
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"the live data directory (default: ${DATA_HOME_ENV}, else {DEFAULT_DATA_HOME})",
    )


def add_lineage_parser(sub: argparse._SubParsersAction) -> None:
    """The ``lineage`` subcommand."""
    lineage = sub.add_parser(
        "lineage",
        help="the chain through a data version or a run: data, runs, registry, champion",
        description=(
            "For a data version (vNNNN): its sha256, every run that trained on it, the registry "
            "versions they became and when those were champion. For a run id: the same chain "
            "through that run."
        ),
    )
    lineage.add_argument("target", metavar="VERSION|RUN", help="a data version or a run id")
    add_data_dir_option(lineage)
    LINEAGE_OPTIONS.add_to(lineage)
    lineage.set_defaults(func=cmd_lineage, uses_models=False)
