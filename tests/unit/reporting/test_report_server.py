"""The report server: run index, file serving with content types, no path traversal, and no
5xx for hostile URLs or damaged runs (checked on a real server)."""

import html
import http.client
import json
import logging
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sentiment_lora.paths import RESULTS_FILE
from sentiment_lora.reporting import server as report_server
from sentiment_lora.reporting.server import create_app

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"
OLD, NEW = "20261126-065341-aaaa", "20261127-101010-bbbb"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    for run_id in (OLD, NEW):
        run_dir = reports / run_id
        run_dir.mkdir(parents=True)
        shutil.copy(FIXTURE / RESULTS_FILE, run_dir / RESULTS_FILE)
        (run_dir / "report.pdf").write_bytes(f"%PDF-1.7 {run_id}".encode())
        (run_dir / "report.html").write_text(f"<p>{run_id}</p>", encoding="utf-8")
        (run_dir / "notes.txt").write_text("not served", encoding="utf-8")
        (run_dir / "model").mkdir()
    (reports / "latest").symlink_to(NEW, target_is_directory=True)
    (tmp_path / "secret.json").write_text('{"secret": true}', encoding="utf-8")
    outside = tmp_path / "outside-run"
    outside.mkdir()
    shutil.copy(FIXTURE / RESULTS_FILE, outside / RESULTS_FILE)
    (outside / "report.pdf").write_bytes(b"%PDF outside")
    (reports / "20990101-000000-link").symlink_to(outside, target_is_directory=True)
    return reports


@pytest.fixture
def client(reports: Path) -> TestClient:
    return TestClient(create_app(reports))


def test_index_lists_runs_newest_first(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert body.index(NEW) < body.index(OLD)
    assert f'href="/runs/{NEW}/report.pdf"' in body
    assert f'href="/runs/{NEW}/{RESULTS_FILE}"' in body
    assert "20990101-000000-link" not in body  # a symlink is not a run
    best = json.loads((FIXTURE / RESULTS_FILE).read_text())["best_config"]["name"]
    assert best in body


def test_index_escapes_values_from_the_json(reports: Path, client: TestClient) -> None:
    path = reports / NEW / RESULTS_FILE
    summary = json.loads(path.read_text())
    summary["best_config"]["name"] = "<b>bold</b>"
    path.write_text(json.dumps(summary))
    body = client.get("/").text
    assert "&lt;b&gt;bold&lt;/b&gt;" in body and "<b>bold" not in body


def test_run_files_are_served_with_their_content_types(client: TestClient) -> None:
    pdf = client.get(f"/runs/{OLD}/report.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == f"%PDF-1.7 {OLD}".encode()
    html = client.get(f"/runs/{OLD}/report.html")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    data = client.get(f"/runs/{OLD}/{RESULTS_FILE}")
    assert data.headers["content-type"] == "application/json"
    assert data.json()["run_id"]


def test_run_root_redirects_and_latest_is_the_newest(client: TestClient) -> None:
    redirect = client.get(f"/runs/{OLD}/", follow_redirects=False)
    assert redirect.status_code in (302, 307)
    assert redirect.headers["location"] == f"/runs/{OLD}/report.html"
    assert client.get(f"/runs/{OLD}/").text == f"<p>{OLD}</p>"
    latest = client.get("/latest/report.pdf")
    assert latest.status_code == 200 and latest.content == f"%PDF-1.7 {NEW}".encode()


@pytest.mark.parametrize(
    "url",
    [
        "/runs/../secret.json",
        "/runs/%2e%2e/secret.json",
        f"/runs/{OLD}/..%2F..%2Fsecret.json",
        f"/runs/{OLD}/%2e%2e",
        "/runs/..%2F..%2Fsecret.json/x",
        "/runs/.hidden/report.pdf",
        "/runs/20990101-000000-link/report.pdf",  # resolves outside the reports directory
        f"/runs/{OLD}/notes.txt",  # not a report file type
        f"/runs/{OLD}/model",  # a directory
        "/runs/no-such-run/report.pdf",
        "/runs/no-such-run/",
        "/latest/..%2Fsecret.json",
        "/latest/%2e%2e",
    ],
)
def test_unsafe_or_unknown_paths_give_404(client: TestClient, url: str) -> None:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 404, (url, response.status_code)
    assert b"secret" not in response.content and b"PDF" not in response.content


def test_empty_reports_dir(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    assert "No runs yet" in client.get("/").text
    assert client.get("/latest/report.pdf").status_code == 404


def test_a_damaged_run_is_listed_as_damaged(reports: Path, client: TestClient) -> None:
    (reports / OLD / RESULTS_FILE).write_text('{"run_id": 5}', encoding="utf-8")
    response = client.get("/")
    assert response.status_code == 200
    assert "damaged:" in response.text and NEW in response.text


def test_index_shows_the_trend_and_marks_the_champion(reports: Path, tmp_path: Path) -> None:
    from sentiment_lora.operations.registry import ModelRecord, promote
    from sentiment_lora.operations.run_records import PublishedRun, append_run_record

    registry = tmp_path / "registry"
    for run_id, accuracy in ((OLD, 0.80), (NEW, 0.78)):
        model = tmp_path / f"model-{run_id}"
        model.mkdir()
        (model / "adapter_model.safetensors").write_bytes(run_id.encode())
        record = ModelRecord(
            run_id=run_id,
            config_name="cfg",
            model_key=run_id,
            test_accuracy=accuracy,
            test_f1_macro=accuracy,
            test_set_hash="t",
            predictions=[1],
        )
        if run_id == OLD:
            promote(registry, record, model)
        append_run_record(
            registry,
            PublishedRun(
                run_id=run_id,
                triggered_by="schedule",
                data={"train": 10},
                best_config="cfg",
                test_accuracy=accuracy,
                test_f1_macro=accuracy,
                decision=None,
            ),
        )
    page = TestClient(create_app(reports, registry_dir=registry)).get("/").text
    assert "<svg" in page and "Every published run (2)" in page
    assert f"{OLD} ★ champion" in page and f"{NEW} ★ champion" not in page
    plain = TestClient(create_app(reports)).get("/").text
    assert "<svg" not in plain and "★ champion" not in plain


# --- a real server on 127.0.0.1, real HTTP requests ------------------------------------------


@pytest.fixture
def live(reports: Path, tmp_path: Path):
    """``reports`` (its newest run damaged) served by uvicorn on a free port; yields a GET."""
    registry = tmp_path / "registry"
    registry.mkdir()
    app = create_app(reports, registry_dir=registry)
    server = report_server.server(app, log_level="warning", log_config=None)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started

    def get(path: str) -> tuple[int, str, dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=30)
        try:
            connection.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
            connection.endheaders()
            response = connection.getresponse()
            body = response.read().decode("utf-8", "replace")
            return response.status, body, dict(response.getheaders())
        finally:
            connection.close()

    yield get
    server.should_exit = True
    thread.join(10)


DAMAGES = {
    "deeply nested": (b"[" * 100_000, "nested deeper than 64 levels"),
    "not UTF-8": (b'{"run_id": "\xff"}', "not UTF-8"),
    "empty": (b"", "is empty"),
    "wrong type": (b'{"run_id": 5}', "run_id: Input should be a valid string"),
    "a directory": (None, "is a directory"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_newest_run_is_listed_and_latest_still_serves(
    reports: Path, live, damage: str
) -> None:
    content, reason = DAMAGES[damage]
    results = reports / NEW / RESULTS_FILE
    results.unlink()
    if content is None:
        results.mkdir()
    else:
        results.write_bytes(content)
    status, body, _ = live("/")
    assert status == 200
    assert "damaged:" in body and reason in html.unescape(body) and OLD in body
    status, _, headers = live("/latest/")
    assert status == 307 and headers["location"] == "/latest/report.html"
    assert live("/latest/report.html")[:2] == (200, f"<p>{NEW}</p>")
    assert live(f"/runs/{NEW}/")[0] == 307  # still a run: its report is served


def test_a_damaged_registry_does_not_hide_the_runs(tmp_path: Path, live) -> None:
    (tmp_path / "registry" / "ledger.jsonl").write_text("not json\nnot json either\n")
    status, body, _ = live("/")
    assert status == 200 and "registry: damaged:" in body and NEW in body and OLD in body


LONG = "a" * 5000  # one path component longer than any file name may be (ENAMETOOLONG)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/" + "a" * 100_000, {414}),
        (f"/runs/{OLD}/report.html?" + "q" * 100_000, {414}),
        (f"/runs/{LONG}/report.html", {404}),
        (f"/runs/{LONG}/", {404}),
        (f"/runs/{OLD}/{LONG}.html", {404}),
        (f"/latest/{LONG}.pdf", {404}),
        ("/runs/%00/report.html", {400, 404}),
        (f"/runs/{OLD}/report.html%00.pdf", {400, 404}),
        ("/latest/%00", {400, 404}),
        ("/runs/../secret.json", {400, 404}),
        (f"/runs/{OLD}/../../secret.json", {400, 404}),
        ("/runs/%2e%2e/secret.json", {400, 404}),
        (f"/runs/{OLD}/..%2F..%2Fsecret.json", {400, 404}),
        ("/runs/%2Fetc%2Fpasswd/report.html", {400, 404}),
        (f"/runs/{OLD}/%2Fetc%2Fpasswd", {400, 404}),
        ("//etc/passwd", {400, 404}),
        ("/runs//etc/passwd", {400, 404}),
    ],
)
def test_hostile_urls_get_4xx_never_5xx(live, path: str, expected: set[int]) -> None:
    status, body, _ = live(path)
    assert status in expected, (path[:80], status, body[:200])
    assert "secret" not in body and "root:" not in body


def test_an_unexpected_error_in_a_handler_is_a_logged_500(live, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(report_server, "list_runs", broken)
    with caplog.at_level(logging.ERROR):
        status, body, _ = live("/")
        assert status == 500 and "a bug" not in body  # no traceback for the client
        deadline = time.monotonic() + 10  # uvicorn logs it after the answer has gone out
        while not any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
