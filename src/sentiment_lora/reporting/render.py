"""Rendering a run's ``report.html`` and ``report.pdf`` from its directory's files alone.

:func:`render_html` draws the figures and fills ``report.html.j2`` from the context that
:mod:`sentiment_lora.reporting.context` builds; the stylesheet is inlined and figures are
referenced by file name, so a run directory can be moved or zipped as a whole.
"""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from sentiment_lora.io import atomic_write_bytes, atomic_write_text
from sentiment_lora.paths import HTML_FILE, PDF_FILE
from sentiment_lora.reporting.context import build_report_context
from sentiment_lora.reporting.results import load_results
from sentiment_lora.reporting.templates import templates_dir as default_templates_dir

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"


def jinja_environment(templates_dir: Path | None = None) -> Environment:
    """Autoescaping, ``StrictUndefined`` Jinja environment over the report templates."""
    templates = templates_dir or default_templates_dir()
    if not (templates / TEMPLATE).is_file():
        raise FileNotFoundError(f"report template not found: {templates / TEMPLATE}")
    return Environment(
        loader=FileSystemLoader(templates),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> Path:
    """Draw the figures and write ``run_dir/report.html`` from the run's JSON; return its path."""
    from sentiment_lora.reporting.plots import render_plots  # matplotlib: only when drawing

    run_dir = Path(run_dir)
    templates = Path(templates_dir) if templates_dir is not None else default_templates_dir()
    env = jinja_environment(templates)
    summary = load_results(run_dir)
    context = build_report_context(summary, plots=render_plots(run_dir, summary=summary))
    css = Markup((templates / STYLESHEET).read_text(encoding="utf-8"))
    html = env.get_template(TEMPLATE).render(**context, css=css)
    return atomic_write_text(run_dir / HTML_FILE, html)


def render_pdf(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> Path:
    """Write ``run_dir/report.pdf`` from ``report.html`` (rendered first if missing)."""
    from weasyprint import HTML

    run_dir = Path(run_dir)
    html_path = run_dir / HTML_FILE
    if not html_path.is_file():
        render_html(run_dir, templates_dir=templates_dir)
    pdf = HTML(string=html_path.read_text(encoding="utf-8"), base_url=str(run_dir)).write_pdf()
    return atomic_write_bytes(run_dir / PDF_FILE, pdf)


def render_report(
    run_dir: Path | str, *, templates_dir: Path | str | None = None
) -> tuple[Path, Path]:
    """Re-render ``report.html`` and ``report.pdf`` of a run from its files alone."""
    html = render_html(run_dir, templates_dir=templates_dir)
    return html, render_pdf(run_dir, templates_dir=templates_dir)
