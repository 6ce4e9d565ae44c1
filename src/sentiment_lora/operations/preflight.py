"""Cheap checks of a run's environment and data, done before any model is loaded or trained.

Parameter *values* are validated by the pydantic models; these checks need the file system
(and, for a hub model id, the hub): each error names the parameter it is about, or, for the
data, the file (and line) and the label counts.
"""

import os
import tempfile
from pathlib import Path

from sentiment_lora.config import PipelineConfig
from sentiment_lora.errors import UserError
from sentiment_lora.operations.data_checkout import recorded_version
from sentiment_lora.operations.disk import free_bytes, mib, run_need_bytes, weights_bytes
from sentiment_lora.operations.storage import is_url
from sentiment_lora.training.data import check_sst2
from sentiment_lora.training.modeling import ModelLoadError, model_type_of, resolve_model_source


class PreflightError(UserError):
    """A parameter points at something unusable."""


def check_writable_dir(path: Path | str, *, parameter: str) -> None:
    """Create ``path`` if needed and prove a file can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PreflightError(
            f"{parameter}: {path} is not a writable directory ({exc.strerror})"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PreflightError(f"{parameter}: {path} is not a writable directory")


def check_model(model: str) -> str:
    """Resolve ``model`` and read its config; returns its model type."""
    try:
        return model_type_of(resolve_model_source(model))
    except ModelLoadError as exc:
        raise PreflightError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise PreflightError(f"model: cannot load {model!r}: {str(exc).splitlines()[0]}") from None


def preflight(config: PipelineConfig) -> None:
    """Every check, in order of cost; raises :class:`PreflightError` naming the parameter, or
    :class:`~sentiment_lora.training.data.DataFormatError` naming the data file (and line) when
    the data is malformed or cannot train a classifier (see ``check_sst2``).

    A configuration that passed once in this process is not checked again (the command line
    checks before Prefect starts, and the flow checks for runs started elsewhere).
    """
    key = config.model_dump_json()
    if key not in _PASSED:
        _check(config)
        _PASSED.add(key)


_PASSED: set[str] = set()


HUB_BASE_BYTES = 500 * 2**20  # a hub model not downloaded yet: assume a base-size encoder


def check_disk(config: PipelineConfig, *, free=free_bytes) -> None:
    """Refuse a run whose expected disk need (:func:`run_need_bytes`) exceeds the free space
    where it writes its training artifacts and its run directory."""
    source = resolve_model_source(config.train.model)
    base = weights_bytes(source) if Path(source).is_dir() else HUB_BASE_BYTES
    need = run_need_bytes(config, base)
    options = config.options
    places = {"reports_dir": options.reports_dir}
    if not is_url(options.artifacts_dir):
        places["artifacts_dir"] = options.artifacts_dir
    for parameter, where in places.items():
        left = free(where)
        if left < need:
            methods = sorted({hp.method for hp in config.grid})
            raise PreflightError(
                f"{parameter}: {mib(left)} free on {where}; this run ({len(config.grid)} "
                f"configs, {'/'.join(methods)}, base model {mib(base)}) needs about "
                f"{mib(need)}: free some space (sentiment-lora gc) or point {parameter} "
                "elsewhere"
            )


def _check(config: PipelineConfig) -> None:
    options = config.options
    check_writable_dir(options.reports_dir, parameter="reports_dir")
    check_writable_dir(options.registry_dir, parameter="registry_dir")  # the ledger, at least
    if not is_url(options.artifacts_dir):
        check_writable_dir(options.artifacts_dir, parameter="artifacts_dir")
    if config.data.data_version is not None:
        if config.data.source != "local":
            raise PreflightError("data_version: only local data directories have versions")
        recorded_version(config.data.data_dir, config.data.data_version)
    check_sst2(config.data)  # parsed and split in memory: about a second for SST-2
    check_model(config.train.model)
    check_disk(config)
