"""``sentiment-lora report``, ``serve-reports`` and ``schema`` on bad input: one line, exit 2."""

import errno
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.paths import HTML_FILE, PDF_FILE, PREDICTIONS_FILE, RESULTS_FILE

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"
CLI = [sys.executable, "-m", "sentiment_lora.cli"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A copy of the committed run: results and predictions, no report yet."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "run"))


def test_report_on_a_damaged_run_is_one_line_exit_2_without_traceback(run_dir: Path) -> None:
    (run_dir / RESULTS_FILE).write_bytes(b"[" * 100_000)
    done = subprocess.run(
        [*CLI, "report", str(run_dir)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == f"error: {run_dir / RESULTS_FILE}:1:65: nested deeper than 64 levels " \
        "(a results file has ~10)\n"  # fmt: skip
    assert sorted(p.name for p in run_dir.iterdir()) == [RESULTS_FILE, PREDICTIONS_FILE]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: None, "{d}: does not exist (a run directory holds fine_tuning_results.json)"),
        (lambda d: d.write_text("x"), "{d}: is not a directory (a run directory holds"),
        (lambda d: d.mkdir(), "{d}/fine_tuning_results.json: not found (is {d} a run directory?)"),
    ],
    ids=["missing", "a-file", "no-results"],
)
def test_report_names_a_run_dir_that_is_not_one(tmp_path: Path, capsys, make, expected) -> None:
    target = tmp_path / "run"
    make(target)
    assert main(["report", str(target)]) == 2
    assert _one_error_line(capsys).startswith("error: " + expected.format(d=target))


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_report_into_a_read_only_run_dir_says_what_to_do(
    run_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Simulated: root writes into a chmod 555 directory, so mkstemp is refused as it would be."""
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # noqa: A002 (tempfile's name)
        if dir is not None and Path(dir) == run_dir:
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    before = _snapshot(run_dir)
    assert main(["report", str(run_dir)]) == 2
    assert _one_error_line(capsys) == (
        f"error: {run_dir}: cannot write the report there (Permission denied); write it "
        "elsewhere with `sentiment-lora report RUN_DIR --out DIR`, or copy the run directory"
    )
    assert _snapshot(run_dir) == before  # nothing half-written
    out = tmp_path / "elsewhere" / "report"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out / HTML_FILE), str(out / PDF_FILE)]
    assert (out / PDF_FILE).read_bytes().startswith(b"%PDF")
    assert (out / "confusion_matrix.png").is_file() and _snapshot(run_dir) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 555 directory anyway")
def test_report_into_a_chmod_read_only_run_dir(run_dir: Path, capsys) -> None:
    run_dir.chmod(0o555)
    try:
        before = _snapshot(run_dir)
        assert main(["report", str(run_dir)]) == 2
        assert _one_error_line(capsys).startswith(f"error: {run_dir}: cannot write the report")
        assert _snapshot(run_dir) == before
    finally:
        run_dir.chmod(0o755)


def test_report_out_must_be_a_directory(run_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "a-file").write_text("x")
    assert main(["report", str(run_dir), "--out", str(tmp_path / "a-file")]) == 2
    assert _one_error_line(capsys) == f"error: {tmp_path / 'a-file'}: not a directory; the " \
        "report needs one"  # fmt: skip


@pytest.fixture
def port_in_use():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--port", "70000"], "error: --port 70000: Input should be less than or equal to 65535"),
        (["--port", "-1"], "error: --port -1: Input should be greater than or equal to 1"),
        (["--port", "0"], "error: --port 0: Input should be greater than or equal to 1"),
        (["--host", ""], "error: --host '': must be a host name or an IP address, e.g. 127.0.0.1"),
        (["--host", "a b"], "error: --host 'a b': must be a host name or an IP address"),
        (["--host", "no-such-host.invalid"], "error: --host no-such-host.invalid: not a known"),
        (["--port", "PORT_IN_USE"], "error: --port PORT_IN_USE: address already in use; "),
    ],
    ids=["70000", "-1", "0", "empty-host", "two-words", "unknown-host", "in-use"],
)
def test_serve_reports_option_errors_before_binding(
    tmp_path: Path, capsys, port_in_use: int, options: list[str], expected: str
) -> None:
    options = [o.replace("PORT_IN_USE", str(port_in_use)) for o in options]
    assert main(["serve-reports", "--reports-dir", str(tmp_path), *options]) == 2
    assert _one_error_line(capsys).startswith(expected.replace("PORT_IN_USE", str(port_in_use)))


def test_schema_into_a_closed_pipe_is_quiet() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` that has already exited
    try:
        done = subprocess.run(
            [*CLI, "schema"], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0 and done.stderr == ""
