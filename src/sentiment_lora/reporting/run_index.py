"""The published runs of a reports directory, newest first, as the report server lists them."""

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


def _run_info(run_dir: Path) -> RunInfo:
    has = {"has_html": (run_dir / HTML_FILE).is_file(), "has_pdf": (run_dir / PDF_FILE).is_file()}
    try:
        summary = load_results(run_dir)
    except (OSError, ValueError) as exc:
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
    """A published run: a safely named directory (not ``latest``, not hidden) with results."""
    if path.name == LATEST or path.name.startswith(".") or path.is_symlink():
        return False
    try:
        safe_name(path.name)
    except ValueError:
        return False
    return path.is_dir() and (path / RESULTS_FILE).is_file()


def list_runs(reports_dir: Path | str) -> list[RunInfo]:
    """Published runs in ``reports_dir``, newest first.

    Hidden staging directories (``.<id>.partial``), the ``latest`` link and names that are
    not safe path components are skipped. Run ids start with a UTC timestamp, so sorting
    them in reverse puts the newest first.
    """
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        return []
    runs = sorted((p for p in reports_dir.iterdir() if is_run_dir(p)), reverse=True)
    return [_run_info(p) for p in runs]
