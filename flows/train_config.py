"""Train and evaluate ONE grid config: the unit of work a `gpu` work pool runs.

Deployed as `sst2-train-config`; the pipeline's `work-pool` backend starts one run per config.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python flows/train_config.py`: make `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flows._env  # noqa: F401, I001  (process defaults: must precede the Prefect import)

import argparse

from prefect import flow
from prefect.runtime import flow_run

from flows._env import hide_user_error_tracebacks
from sentiment_lora.cli_options import ModelOptions
from sentiment_lora.config import (
    GRIDS,
    DataConfig,
    LoraHyperparams,
    RunOptions,
    TrainConfig,
    resolve_path,
)
from sentiment_lora.errors import DEBUG_ENV, UserError, debug_requested, report_input_error
from sentiment_lora.operations.storage import (
    is_url,
    local_root,
    put_text,
    remote_path,
    result_location,
    upload_dir,
)
from tasks.pipeline_tasks import (
    ConfigRun,
    evaluate_on_test,
    prepare_data_fresh,
    train_config_fresh,
)


@flow(name="sst2-train-config")
def sst2_train_config(
    hp: LoraHyperparams,
    data: DataConfig = DataConfig(),  # noqa: B008 (frozen model: a safe default)
    train: TrainConfig = TrainConfig(),  # noqa: B008
    artifacts_dir: str = RunOptions().artifacts_dir,
    stop_at_epoch: float | None = None,
) -> ConfigRun:
    """Fine-tune one config and evaluate it on test; returns paths and metrics (small).

    ``stop_at_epoch`` stops it at successive halving's first rung; a later run without it
    resumes from that rung's checkpoint when it runs where the first did (the same artifacts
    root on the same machine), and trains from the start elsewhere.

    With an fsspec URL as ``artifacts_dir`` the adapter is uploaded there and the returned
    ``adapter_dir`` is its URL. The result is also written to the artifacts root
    (``results/<flow run id>.json``): a parent on another machine reads it there, not from this
    worker's Prefect home.
    """
    workdir = str(
        local_root(artifacts_dir) if is_url(artifacts_dir) else resolve_path(artifacts_dir)
    )
    prepared = prepare_data_fresh(data, workdir)
    result = train_config_fresh(prepared, hp, train, workdir, stop_at_epoch).result()
    run = ConfigRun(training=result, test=evaluate_on_test(result, prepared, train))
    if is_url(artifacts_dir):
        url = upload_dir(
            result.adapter_dir, remote_path(artifacts_dir, result.adapter_dir, mirror=Path(workdir))
        )
        run = run.model_copy(update={"training": result.model_copy(update={"adapter_dir": url})})
    run_id = flow_run.get_id()
    if run_id is not None:
        put_text(result_location(artifacts_dir, run_id), run.model_dump_json())
    return run


# The command line's option groups (a run by hand; a deployment passes the parameters).
OPTIONS = ModelOptions({"data": DataConfig, "train": TrainConfig})
ARTIFACTS = ModelOptions({"options": RunOptions}, only=("artifacts_dir",))


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``python flows/train_config.py``, from the config models."""
    names = list(dict.fromkeys(h.name for grid in GRIDS.values() for h in grid))
    parser = argparse.ArgumentParser(description="Train and evaluate one grid config on SST-2.")
    parser.add_argument(
        "config", nargs="?", choices=names, default=names[0], help="a config of the grids"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error in the input too (or set {DEBUG_ENV}=1)",
    )
    OPTIONS.add_to(parser, rename={"source": "--data-source"})
    ARTIFACTS.add_to(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one config; an error in the input (an option, a bad data row found by the data
    task) is one line ``error: ...`` and exit 2 (``--debug`` shows the traceback)."""
    debug = debug_requested("--debug" in (sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    try:
        parameters = {
            "hp": next(h for grid in GRIDS.values() for h in grid if h.name == args.config),
            "data": OPTIONS.build(args, "data"),
            "train": OPTIONS.build(args, "train"),
            "artifacts_dir": ARTIFACTS.build(args, "options").artifacts_dir,
        }
        if not debug:
            hide_user_error_tracebacks()
        run = sst2_train_config(**parameters)
    except UserError as exc:
        return report_input_error(exc, debug)
    print(run.training.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
