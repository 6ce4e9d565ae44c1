"""The published runs of a reports directory, newest first, as the report server lists them."""

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sentiment_lora.paths import HTML_FILE, LATEST, PDF_FILE, RESULTS_FILE, safe_name
from sentiment_lora.reporting.results import load_results


class RunInfo(BaseModel):
    """One published run in a reports directory."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    created_at: str | None
    best_config: str | None
    test_accuracy: float | None
    has_html: bool
    has_pdf: bool
    error: str | None = None  # why the results file could not be read, if it could not


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where even that fails (a name too long, no permission)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _run_info(run_dir: Path) -> RunInfo:
    has = {"has_html": _is_file(run_dir / HTML_FILE), "has_pdf": _is_file(run_dir / PDF_FILE)}
    try:
        summary = load_results(run_dir)
    except (OSError, ValueError, RecursionError) as exc:  # RunFileError; the rest for safety
        return RunInfo(
            run_id=run_dir.name,
            created_at=None,
            best_config=None,
            test_accuracy=None,
            error=str(exc),
            **has,
        )
    return RunInfo(
        run_id=run_dir.name,
        created_at=summary.created_at,
        best_config=summary.best_config.name,
        test_accuracy=summary.test_metrics.accuracy,
        **has,
    )


def is_run_dir(path: Path) -> bool:
    """A published run: a safely named directory (not ``latest``, not hidden) with a results
    file (a damaged one too: the index lists it as damaged)."""
    if path.name == LATEST or path.name.startswith(".") or path.is_symlink():
        return False
    try:
        safe_name(path.name)
    except ValueError:
        return False
    try:
        return path.is_dir() and os.path.lexists(path / RESULTS_FILE)
    except OSError:  # there, but not readable: listed, as damaged
        return True


def list_runs(reports_dir: Path | str) -> list[RunInfo]:
    """Published runs in ``reports_dir``, newest first.

    Hidden staging directories (``.<id>.partial``), the ``latest`` link and names that are
    not safe path components are skipped. Run ids start with a UTC timestamp, so sorting
    them in reverse puts the newest first.
    """
    return [_run_info(p) for p in run_dirs(reports_dir)]


def run_dirs(reports_dir: Path | str) -> list[Path]:
    """The published run directories of ``reports_dir``, newest first (nothing is parsed)."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        return []
    return sorted((p for p in reports_dir.iterdir() if is_run_dir(p)), reverse=True)
