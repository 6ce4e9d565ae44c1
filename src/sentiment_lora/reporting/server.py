"""A tiny read-only web server for the runs in a reports directory.

``/`` lists the runs, newest first (a run whose results file cannot be read is listed as
damaged, with the reason); ``/runs/<run-id>/<file>`` serves one file of a run;
``/latest/<file>`` serves a file of the newest run. Run ids and file names must be single,
safe path components and resolve inside the reports directory, else the answer is 404; a
URL longer than :data:`MAX_URL_BYTES` gets 414. Bad input never gets a 5xx.
"""

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sentiment_lora.operations.ledger import read_ledger
from sentiment_lora.operations.registry import read_champion_version
from sentiment_lora.paths import HTML_FILE, PDF_FILE, RESULTS_FILE, safe_name
from sentiment_lora.reporting.listen import bind, server_options
from sentiment_lora.reporting.plots import trend_svg
from sentiment_lora.reporting.render import jinja_environment
from sentiment_lora.reporting.run_index import RunInfo, list_runs, run_dirs
from sentiment_lora.reporting.trend import build_trend

if TYPE_CHECKING:
    import uvicorn

INDEX_TEMPLATE = "index.html.j2"
MAX_URL_BYTES = 8 * 1024  # path and query; longer gets 414
# h11 answers 400 to a request head it cannot hold; let a long URL reach the 414 check instead.
MAX_REQUEST_HEAD_BYTES = 256 * 1024
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
    try:
        root = reports_dir.resolve()
        path = (root / run_id / name).resolve()
        found = path.is_relative_to(root) and path.suffix in CONTENT_TYPES and path.is_file()
    except OSError:  # a name too long for the file system, a loop, no permission
        found = False
    if not found:
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
    champion, records, registry_error = None, [], None
    if registry_dir:
        try:
            champion = read_champion_version(registry_dir)
            records = read_ledger(registry_dir)
        except (OSError, ValueError) as exc:  # the runs are still worth listing
            registry_error = str(exc)
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
            registry_error=registry_error,
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
        if run_id not in {p.name for p in run_dirs(reports_dir)}:  # damaged runs included
            raise HTTPException(status_code=404)
        return RedirectResponse(f"/runs/{quote(run_id)}/{HTML_FILE}", status_code=307)

    async def latest_root(request: Request) -> Response:
        return RedirectResponse(f"/latest/{HTML_FILE}", status_code=307)

    async def latest_file(request: Request) -> Response:
        runs = run_dirs(reports_dir)  # the newest run, damaged or not: its files are served
        if not runs:
            raise HTTPException(status_code=404)
        return _file_response(_run_file(reports_dir, runs[0].name, request.path_params["file"]))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/runs/{run_id}/", run_root),
            Route("/runs/{run_id}/{file}", run_file),
            Route("/latest/", latest_root),
            Route("/latest/{file}", latest_file),
        ],
        middleware=[Middleware(LimitUrlLength)],
    )


class LimitUrlLength:
    """ASGI middleware: 414 for a URL (path and query) longer than :data:`MAX_URL_BYTES`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("raw_path") or scope["path"].encode()
            if len(path) + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
                response = PlainTextResponse("URI Too Long", status_code=414)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def server(app: ASGIApp, **config: Any) -> "uvicorn.Server":
    """A uvicorn server for ``app`` with the report server's limits (``config``: more options)."""
    import uvicorn

    settings = {"log_level": "info", "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES}
    return uvicorn.Server(uvicorn.Config(app, **{**settings, **config}))


def serve(
    reports_dir: Path | str,
    *,
    registry_dir: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``reports_dir`` with uvicorn until interrupted.

    ``sock`` is a socket :func:`bind` returned (``host`` and ``port`` are then not used);
    without one, ``host`` and ``port`` are checked and bound here (:class:`OptionError`).
    """
    if sock is None:
        sock = bind(server_options(host, port))
    app = create_app(reports_dir, registry_dir=registry_dir)
    server(app).run(sockets=[sock])
