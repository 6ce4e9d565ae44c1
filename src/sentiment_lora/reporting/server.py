"""A tiny read-only web server for the runs in a reports directory.

``/`` lists the runs, newest first; ``/runs/<run-id>/<file>`` serves one file of a run;
``/latest/<file>`` serves a file of the newest run. Run ids and file names must be single,
safe path components and resolve inside the reports directory, else the answer is 404.
"""

from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sentiment_lora.operations.ledger import read_ledger
from sentiment_lora.operations.registry import read_champion_version
from sentiment_lora.paths import HTML_FILE, PDF_FILE, RESULTS_FILE, safe_name
from sentiment_lora.reporting.plots import trend_svg
from sentiment_lora.reporting.render import jinja_environment
from sentiment_lora.reporting.run_index import RunInfo, list_runs
from sentiment_lora.reporting.trend import build_trend

INDEX_TEMPLATE = "index.html.j2"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".png": "image/png",
    ".csv": "text/csv; charset=utf-8",
}


def _run_file(reports_dir: Path, run_id: str, name: str) -> Path:
    """The file ``name`` of run ``run_id``, or HTTP 404 if unsafe, unknown or outside."""
    try:
        safe_name(run_id, what="run id")
        safe_name(name, what="file name")
    except ValueError:
        raise HTTPException(status_code=404) from None
    root = reports_dir.resolve()
    path = (root / run_id / name).resolve()
    if not path.is_relative_to(root) or path.suffix not in CONTENT_TYPES or not path.is_file():
        raise HTTPException(status_code=404)
    return path


def _file_response(path: Path) -> FileResponse:
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix])


def index_page(
    runs: list[RunInfo],
    *,
    reports_dir: Path,
    registry_dir: Path | None = None,
) -> str:
    """The HTML of the run list (``templates/index.html.j2``, every value escaped).

    With ``registry_dir``, the champion's run is marked and the trend of every run in the
    registry's ledger is drawn above the list.
    """
    champion = read_champion_version(registry_dir) if registry_dir else None
    records = read_ledger(registry_dir) if registry_dir else []
    trend = build_trend(records)
    return (
        jinja_environment()
        .get_template(INDEX_TEMPLATE)
        .render(
            runs=runs,
            reports_dir=str(reports_dir),
            html_file=HTML_FILE,
            pdf_file=PDF_FILE,
            results_file=RESULTS_FILE,
            champion_run=champion.run_id if champion else None,
            champion_version=champion.version if champion else None,
            trend_svg=Markup(trend_svg(trend)) if trend.points else None,
        )
    )


def create_app(reports_dir: Path | str, *, registry_dir: Path | str | None = None) -> Starlette:
    """The report server for ``reports_dir`` (read at every request: new runs show up)."""
    reports_dir = Path(reports_dir)
    registry = Path(registry_dir) if registry_dir is not None else None

    async def index(request: Request) -> Response:
        page = index_page(list_runs(reports_dir), reports_dir=reports_dir, registry_dir=registry)
        return HTMLResponse(page)

    async def run_file(request: Request) -> Response:
        params = request.path_params
        return _file_response(_run_file(reports_dir, params["run_id"], params["file"]))

    async def run_root(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        _run_file(reports_dir, run_id, RESULTS_FILE)  # 404 unless it is a run
        return RedirectResponse(f"/runs/{quote(run_id)}/{HTML_FILE}", status_code=307)

    async def latest_root(request: Request) -> Response:
        return RedirectResponse(f"/latest/{HTML_FILE}", status_code=307)

    async def latest_file(request: Request) -> Response:
        runs = list_runs(reports_dir)
        if not runs:
            raise HTTPException(status_code=404)
        return _file_response(_run_file(reports_dir, runs[0].run_id, request.path_params["file"]))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/runs/{run_id}/", run_root),
            Route("/runs/{run_id}/{file}", run_file),
            Route("/latest/", latest_root),
            Route("/latest/{file}", latest_file),
        ]
    )


def serve(
    reports_dir: Path | str,
    *,
    registry_dir: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> None:
    """Serve ``reports_dir`` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(reports_dir, registry_dir=registry_dir)
    uvicorn.run(app, host=host, port=port, log_level="info")
