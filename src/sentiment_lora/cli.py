"""The ``sentiment-lora`` console command."""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment_lora.cli_options import ModelOptions
from sentiment_lora.config import RunOptions
from sentiment_lora.errors import (
    DEBUG_ENV,
    UserError,
    debug_requested,
    report_input_error,
    user_error,
)
from sentiment_lora.format_numbers import num
from sentiment_lora.gc_command import add_gc_parser
from sentiment_lora.lineage_command import add_data_dir_option, add_lineage_parser
from sentiment_lora.operations.data_home import (
    data_home,
    ensure_data_home,
)
from sentiment_lora.operations.events import (
    DATA_UPDATED,
    api_url,
    champion_changed,
    data_updated,
    send_event,
)
from sentiment_lora.operations.holdout_routing import HOLDOUT_FRACTION
from sentiment_lora.operations.ledger import LedgerRecord
from sentiment_lora.paths import MODEL_DIR
from sentiment_lora.predict_command import PREDICT_OPTIONS, cmd_predict
from sentiment_lora.reporting.listen import ServerOptions

if TYPE_CHECKING:  # importing it loads pandas and scikit-learn: only `data add` needs them
    from sentiment_lora.operations.data_versions import DataUpdate

# Options shared with the pipeline come from the models' fields (names, defaults, help).
SERVE_OPTIONS = ModelOptions({"options": RunOptions}, only=("reports_dir", "registry_dir"))
REGISTRY_OPTIONS = ModelOptions({"options": RunOptions}, only=("registry_dir",))


def cmd_fetch_data(args: argparse.Namespace) -> int:
    """Download glue/sst2 from the Hugging Face hub into GLUE TSV files."""
    from sentiment_lora.training.data import download_sst2

    out = download_sst2(args.out_dir)
    print(f"wrote {out}/train.tsv and {out}/dev.tsv")
    return 0


def _print(text: str) -> None:
    """Write ``text`` to stdout; a reader that stopped reading (``| head -1``) ends it quietly.

    As Python's documentation advises, stdout is pointed at /dev/null after a broken pipe, so
    the interpreter's last flush does not fail again on exit.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render a run's report.html and report.pdf from its files (no retraining)."""
    from sentiment_lora.reporting.render import render_report

    html, pdf = render_report(Path(args.run_dir), out_dir=args.out)  # RunFileError: one line
    _print(f"{html}\n{pdf}\n")
    return 0


def cmd_serve_reports(args: argparse.Namespace) -> int:
    """Serve the runs of a reports directory over HTTP until interrupted."""
    from sentiment_lora.reporting.listen import bind, server_options

    options = server_options(args.host, args.port)  # OptionError before anything is bound
    dirs = SERVE_OPTIONS.build(args, "options")
    reports_dir, registry_dir = Path(dirs.reports_dir), Path(dirs.registry_dir)
    if not reports_dir.is_dir():
        raise UserError(f"--reports-dir: {reports_dir} is not a directory")
    sock = bind(options)  # OptionError: the port is taken, the host is not this machine's
    print(f"serving {reports_dir} at http://{options.host}:{options.port}/", file=sys.stderr)
    from sentiment_lora.reporting.server import serve  # matplotlib, pandas: seconds to load

    serve(reports_dir, registry_dir=registry_dir, sock=sock)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of fine_tuning_results.json."""
    from sentiment_lora.reporting.results import results_schema

    _print(json.dumps(results_schema(), indent=2) + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's model (or a model directory) to ONNX, optionally int8-quantized."""
    from sentiment_lora.deployment.onnx_export import export_onnx
    from sentiment_lora.paths import METADATA_FILE

    source = Path(args.run_dir)
    model_dir = source / MODEL_DIR if (source / MODEL_DIR).is_dir() else source
    if not (model_dir / METADATA_FILE).is_file():
        raise UserError(
            f"RUN_DIR: {source} is not a run directory or a model directory "
            f"(no {MODEL_DIR}/ or {METADATA_FILE})"
        )
    result = export_onnx(model_dir, args.out, quantize=args.quantize)
    print(
        f"wrote {result.out_dir} ({args.format}, {result.quantize}, "
        f"{result.size_bytes / 1e6:.1f} MB); serve it with "
        f"`sentiment-lora predict --backend onnx --model-dir {result.out_dir}`"
    )
    return 0


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns under a header."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _registry_dir(args: argparse.Namespace) -> Path:
    """The ``--registry-dir`` option (ValueError naming it if invalid or not a directory)."""
    registry_dir = Path(REGISTRY_OPTIONS.build(args, "options").registry_dir)
    if not registry_dir.is_dir():
        raise ValueError(f"--registry-dir: {registry_dir} is not a directory")
    return registry_dir


def _ledger_row(record: LedgerRecord) -> list[str]:
    if record.kind == "rollback":
        return [record.time, "-", "-", "-", "-", "-", f"rollback: {record.reason}", record.version]
    return [
        record.time,
        record.run_id,
        record.triggered_by,
        record.best_config,
        f"{num(record.test_accuracy)}",
        f"{num(record.test_f1_macro)}",
        record.gate,
        record.champion_version or "-",
    ]


def cmd_runs(args: argparse.Namespace) -> int:
    """Print the registry's run ledger as a table, oldest first."""
    from sentiment_lora.operations.ledger import ledger_path, read_ledger

    try:
        registry_dir = _registry_dir(args)
        records = read_ledger(registry_dir)
    except ValueError as exc:
        raise user_error(exc)  # noqa: B904 (chained implicitly; a UserError is re-raised as is)
    if not records:
        print(f"no runs recorded in {ledger_path(registry_dir)}")
        return 0
    header = ["time", "run id", "trigger", "best config", "test acc", "macro-F1", "gate"]
    print(format_table([*header, "champion"], [_ledger_row(r) for r in records]))
    return 0


def cmd_champion_list(args: argparse.Namespace) -> int:
    """Print the registry's versions; the current champion is marked with ``*``."""
    from sentiment_lora.operations.registry import check_champion, list_versions

    try:
        registry_dir = _registry_dir(args)
        versions = list_versions(registry_dir)
        champion = check_champion(registry_dir)
    except ValueError as exc:
        raise user_error(exc)  # noqa: B904 (chained implicitly; a UserError is re-raised as is)
    if not versions:
        print(f"no versions in {registry_dir}")
        return 0
    current = champion.version if champion is not None else None
    rows = [
        [
            "*" if v.version == current else "",
            v.version,
            v.run_id,
            v.config_name,
            f"{num(v.test_accuracy)}",
            f"{num(v.test_f1_macro)}",
            v.promoted_at or "-",
        ]
        for v in versions
    ]
    header = ["", "version", "run id", "config", "test acc", "macro-F1", "promoted at"]
    print(format_table(header, rows))
    if champion is not None:
        change = champion.became_champion
        print(
            f"\n* champion since {change.at or '-'} ({change.cause}): {change.reason}",
        )
    return 0


def cmd_champion_rollback(args: argparse.Namespace) -> int:
    """Make an earlier version the champion again."""
    from sentiment_lora.operations.registry import rollback

    try:
        champion = rollback(_registry_dir(args), args.version, reason=args.reason)
    except (ValueError, TimeoutError) as exc:
        message = str(exc)
        for parameter, flag in (("version:", "VERSION:"), ("reason:", "--reason:")):
            if message.startswith(parameter):
                message = flag + message[len(parameter) :]
        raise UserError(message) from exc
    change = champion.became_champion
    print(
        f"champion: {champion.version} (run {champion.run_id}, config {champion.config_name}, "
        f"test macro-F1 {num(champion.test_f1_macro)}), was {change.previous_version or '-'}"
    )
    print(f"reason: {change.reason}")
    if url := api_url():  # for the alerts (alerts.yaml)
        try:
            send_event(champion_changed(champion, _registry_dir(args), rolled_back=True), url=url)
        except OSError as exc:
            print(f"warning: the rollback event could not be sent to {url} ({exc})")
    return 0


def _print_data_update(update: "DataUpdate") -> None:
    train = Path(update.data_dir) / "train.tsv"
    print(
        f"{update.source}: {update.rows_read} rows read, {update.duplicates_dropped} duplicates "
        f"dropped ({update.duplicates_in_train} already in train.tsv, "
        f"{update.duplicates_in_file} repeated in the file)"
    )
    if update.version is None:
        print(f"nothing to add: {train} unchanged ({update.rows_before} rows)")
        return
    would = "would be " if update.dry_run else ""
    new, old = update.version, update.previous
    print(
        f"{train}: {update.rows_added} rows {would}added, {update.rows_relabelled} {would}"
        f"relabelled ({update.rows_before} -> {update.rows_after} rows)"
    )
    if new.holdout_sha256:
        print(
            f"{Path(update.data_dir) / 'holdout.tsv'}: {update.rows_held_out} rows {would}held "
            f"out, never trained on ({update.holdout_rows_after} rows)"
        )
    print(f"new version {new.version}: sha256 {new.sha256}")
    print(f"previous version {old.version}: sha256 {old.sha256}, kept as {old.file}")
    if update.dry_run:
        print("dry run: nothing written")


def cmd_data_add(args: argparse.Namespace) -> int:
    """Append new labelled rows to a data directory's train.tsv as a new version.

    A bad file, option or directory raises a UserError (one line, exit 2, from ``main``).
    """
    from sentiment_lora.operations.data_versions import add_rows

    data_dir = args.data_dir or str(data_home())
    try:
        update = add_rows(
            data_dir,
            args.file,
            allow_relabel=args.allow_relabel,
            dry_run=args.dry_run,
            holdout_fraction=args.holdout_fraction,
        )
    except TimeoutError as exc:  # another addition holds the lock: try again later
        raise UserError(str(exc)) from exc
    _print_data_update(update)
    url = api_url()
    if update.version is None or update.dry_run or not url:
        return 0
    try:
        send_event(data_updated(update), url=url)
    except OSError as exc:
        print(
            f"error: {update.version.version} was recorded, but the event {DATA_UPDATED} could not "
            f"be sent to {url} ({exc}): start the retraining run by hand",
            file=sys.stderr,
        )
        return 1
    print(f"sent {DATA_UPDATED} to {url}")
    return 0


def cmd_data_init(args: argparse.Namespace) -> int:
    """Create the live data directory from a read-only copy (nothing if it exists)."""
    home = Path(args.data_dir) if args.data_dir else data_home()
    if ensure_data_home(home, Path(args.source)):
        print(f"{home}: created from {args.source} (train.tsv, dev.tsv); data add writes here")
    else:
        print(f"{home}: already there; left as it is")
    return 0


def _quiet_libraries() -> None:
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser with one sub-command per action."""
    parser = argparse.ArgumentParser(prog="sentiment-lora", description=__doc__)
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error in the input too (or set {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="classify sentences, one per line")
    predict.add_argument("file", help="text file with one sentence per line, or - for stdin")
    predict.add_argument(
        "--model-dir",
        help="a model directory (default: the registry's champion, else reports/latest/model)",
    )
    predict.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        default="torch",
        help="torch: the model directory with PyTorch; onnx: its ONNX export with ONNX Runtime "
        "(CPU; `sentiment-lora export` writes it; given the model directory, its export "
        "beside it is used)",
    )
    PREDICT_OPTIONS.add_to(predict, rename={"eval_batch_size": "--batch-size"})
    predict.set_defaults(func=cmd_predict, uses_models=True)
    fetch = sub.add_parser("fetch-data", help="download SST-2 from the Hugging Face hub as TSV")
    fetch.add_argument("out_dir", help="directory for train.tsv and dev.tsv")
    fetch.set_defaults(func=cmd_fetch_data, uses_models=True)
    report = sub.add_parser(
        "report", help="re-render a run's report.html and report.pdf from its JSON"
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/latest")
    report.add_argument(
        "--out",
        metavar="DIR",
        help="write the report and its figures into DIR (created if needed) instead of RUN_DIR, "
        "e.g. for a read-only run directory",
    )
    report.set_defaults(func=cmd_report, uses_models=False)
    serve = sub.add_parser("serve-reports", help="serve the runs' reports over HTTP")
    SERVE_OPTIONS.add_to(serve)
    for name, kind in (("host", str), ("port", int)):  # checked by ServerOptions, one line
        field = ServerOptions.model_fields[name]
        help_ = f"{field.description} (default: {field.default})"
        serve.add_argument(f"--{name}", type=kind, default=field.default, help=help_)
    serve.set_defaults(func=cmd_serve_reports, uses_models=False)
    schema = sub.add_parser("schema", help="print the JSON Schema of fine_tuning_results.json")
    schema.set_defaults(func=cmd_schema, uses_models=False)
    export = sub.add_parser(
        "export", help="write a model to deploy: ONNX, LoRA merged, optionally int8"
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or a model directory")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    export.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help="int8: dynamic int8 weights per channel (about 4x smaller, faster on CPUs)",
    )
    export.add_argument(
        "--out", default=None, help="output directory (default: beside the model, '-onnx[-int8]')"
    )
    export.set_defaults(func=cmd_export, uses_models=True)
    add_gc_parser(sub)
    add_lineage_parser(sub)
    runs = sub.add_parser("runs", help="print the run ledger: every published run and rollback")
    REGISTRY_OPTIONS.add_to(runs)
    runs.set_defaults(func=cmd_runs, uses_models=False)
    champion = sub.add_parser("champion", help="the registry's versions: list them, roll back")
    versions = champion.add_subparsers(dest="action", required=True)
    listing = versions.add_parser("list", help="every version; the champion marked with *")
    REGISTRY_OPTIONS.add_to(listing)
    listing.set_defaults(func=cmd_champion_list, uses_models=False)
    back = versions.add_parser("rollback", help="make an earlier version the champion again")
    back.add_argument("version", metavar="VERSION", help="a version from `champion list`")
    back.add_argument("--reason", required=True, help="why (recorded in the ledger)")
    REGISTRY_OPTIONS.add_to(back)
    back.set_defaults(func=cmd_champion_rollback, uses_models=False)
    data = sub.add_parser("data", help="the live training data: create it, add labelled rows")
    data_actions = data.add_subparsers(dest="action", required=True)
    add = data_actions.add_parser(
        "add",
        help="append new rows of a GLUE TSV file to train.tsv as a new version",
        description=(
            "Validate FILE (GLUE TSV, header 'sentence<TAB>label'), drop rows train.tsv already "
            "has, append the rest and record the version in DATA_DIR/versions/manifest.json. "
            "With PREFECT_API_URL set, emit the Prefect event sentiment-lora.data.updated."
        ),
    )
    add.add_argument("file", metavar="FILE", help="a GLUE TSV file of new labelled rows")
    add_data_dir_option(add)
    add.add_argument(
        "--allow-relabel",
        action="store_true",
        help="a sentence train.tsv has with the other label takes FILE's label (default: refuse)",
    )
    add.add_argument(
        "--dry-run", action="store_true", help="print what would change, write nothing"
    )
    add.add_argument(
        "--holdout-fraction",
        type=float,
        default=HOLDOUT_FRACTION,
        metavar="F",
        help=(
            "share of the new rows (stratified by label) moved to DATA_DIR/holdout.tsv, never "
            f"trained on; the champion gate also judges on it from 200 rows on "
            f"(default {HOLDOUT_FRACTION}; 0 moves none)"
        ),
    )
    add.set_defaults(func=cmd_data_add, uses_models=False)
    init = data_actions.add_parser(
        "init",
        help="create the live data directory (the one data add writes) from a read-only copy",
    )
    init.add_argument(
        "--from",
        dest="source",
        default="data/sst2",
        metavar="DIR",
        help="where train.tsv and dev.tsv come from (default: data/sst2)",
    )
    add_data_dir_option(init)
    init.set_defaults(func=cmd_data_init, uses_models=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sentiment-lora`` command: a user error is one line and exit 2."""
    args = build_parser().parse_args(argv)
    if args.uses_models:  # importing transformers takes seconds: only where it is needed
        _quiet_libraries()
    try:
        return args.func(args)
    except UserError as exc:
        return report_input_error(exc, debug_requested(args.debug))


if __name__ == "__main__":
    sys.exit(main())
