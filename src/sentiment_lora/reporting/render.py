"""Rendering a run's ``report.html`` and ``report.pdf`` from its directory's files alone.

:func:`render_html` checks the run's files first (:func:`load_results`,
:func:`read_predictions`), then draws the figures and fills ``report.html.j2`` from the
context that :mod:`sentiment_lora.reporting.context` builds; the stylesheet is inlined and
figures are referenced by file name, so a report directory can be moved or zipped as a whole.
The report is written into the run directory, or into ``out_dir`` when given (a read-only run,
a copy elsewhere).
"""

import errno
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from sentiment_lora.io import atomic_write_bytes, atomic_write_text
from sentiment_lora.paths import HTML_FILE, PDF_FILE
from sentiment_lora.reporting import format as fmt
from sentiment_lora.reporting.context import build_report_context
from sentiment_lora.reporting.predictions import read_predictions
from sentiment_lora.reporting.results import RunFileError, RunSummary, load_results
from sentiment_lora.reporting.templates import templates_dir as default_templates_dir

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"
# Write failures the user can fix (permissions, a read-only mount, a full disk).
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def jinja_environment(templates_dir: Path | None = None) -> Environment:
    """Autoescaping, ``StrictUndefined`` Jinja environment over the report templates.

    Numbers are written with the filter ``num`` (:func:`format.num`: never ``nan``).
    """
    templates = templates_dir or default_templates_dir()
    if not (templates / TEMPLATE).is_file():
        raise FileNotFoundError(f"report template not found: {templates / TEMPLATE}")
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt.num
    return env


def _unwritable(out_dir: Path, exc: OSError) -> RunFileError:
    return RunFileError(
        f"{out_dir}: cannot write the report there ({exc.strerror}); write it elsewhere "
        "with `sentiment-lora report RUN_DIR --out DIR`, or copy the run directory"
    )


@contextmanager
def writing_into(out_dir: Path) -> Iterator[Path]:
    """Create ``out_dir``; a write it refuses becomes a :class:`RunFileError` naming it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunFileError(f"{out_dir}: not a directory; the report needs one") from None
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(out_dir, exc) from None
    try:
        yield out_dir
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(out_dir, exc) from None


def report_html(
    summary: RunSummary, *, plots: Mapping[str, str], templates_dir: Path | None = None
) -> str:
    """The report's HTML for ``summary`` with the figures ``plots`` (key -> file name)."""
    templates = templates_dir or default_templates_dir()
    env = jinja_environment(templates)
    css = Markup((templates / STYLESHEET).read_text(encoding="utf-8"))
    context = build_report_context(summary, plots=plots)
    return env.get_template(TEMPLATE).render(**context, css=css)


def render_html(
    run_dir: Path | str,
    *,
    out_dir: Path | str | None = None,
    templates_dir: Path | str | None = None,
) -> Path:
    """Draw the figures and write ``report.html`` from the run's files; return its path.

    Nothing is written unless the run's files are sound (else :class:`RunFileError`).
    """
    from sentiment_lora.reporting.plots import render_plots  # matplotlib: only when drawing

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    templates = Path(templates_dir) if templates_dir is not None else default_templates_dir()
    jinja_environment(templates)  # a missing template fails before anything is drawn
    summary = load_results(run_dir)
    predictions = read_predictions(run_dir, summary=summary)
    with writing_into(out):
        plots = render_plots(out, summary=summary, predictions=predictions)
        html = report_html(summary, plots=plots, templates_dir=templates)
        return atomic_write_text(out / HTML_FILE, html)


def render_pdf(
    run_dir: Path | str,
    *,
    out_dir: Path | str | None = None,
    templates_dir: Path | str | None = None,
) -> Path:
    """Write ``report.pdf`` from ``report.html`` (rendered first if missing) next to it."""
    from weasyprint import HTML

    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    html_path = out / HTML_FILE
    if not html_path.is_file():
        render_html(run_dir, out_dir=out, templates_dir=templates_dir)
    pdf = HTML(string=html_path.read_text(encoding="utf-8"), base_url=str(out)).write_pdf()
    with writing_into(out):
        return atomic_write_bytes(out / PDF_FILE, pdf)


def render_report(
    run_dir: Path | str,
    *,
    out_dir: Path | str | None = None,
    templates_dir: Path | str | None = None,
) -> tuple[Path, Path]:
    """Re-render ``report.html`` and ``report.pdf`` of a run from its files alone.

    They go into the run directory, or into ``out_dir`` (created if needed) when given.
    """
    html = render_html(run_dir, out_dir=out_dir, templates_dir=templates_dir)
    return html, render_pdf(run_dir, out_dir=out_dir, templates_dir=templates_dir)
